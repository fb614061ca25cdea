import { hmac, randomToken, timingSafeEqualString } from './crypto';

/**
 * CSRF tokens for the hosted forms: a random nonce lives in a `__Host-` cookie and the form carries
 * HMAC(key, nonce). A cross-site page can neither read the cookie nor compute the HMAC, and a cookie
 * planted from a sibling subdomain cannot forge a matching token without the key.
 */
export const newCsrfNonce = () => randomToken(32);

export const csrfTokenFor = (key: CryptoKey, nonce: string) => hmac(key, `csrf:${nonce}`);

export async function isValidCsrfToken(key: CryptoKey, nonce: string | undefined, token: unknown): Promise<boolean> {
  if (!nonce || typeof token !== 'string' || token.length === 0 || token.length > 128) return false;
  return timingSafeEqualString(await csrfTokenFor(key, nonce), token);
}
