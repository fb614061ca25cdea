const encoder = new TextEncoder();

export function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Decodes base64url we produced (throws on anything else; for client input use decodeBase64url). */
export function fromBase64url(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) bytes[i] = b.charCodeAt(i);
  return bytes;
}

/** Decodes client-supplied base64url (padding optional); null when it is not base64url. */
export function decodeBase64url(s: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s) || s.replace(/=+$/, '').length % 4 === 1) return null;
  try {
    return fromBase64url(s.replace(/=+$/, ''));
  } catch {
    return null;
  }
}

/** Client-supplied base64url of UTF-8 text; null when either layer is malformed. */
export function decodeBase64urlText(s: string): string | null {
  const bytes = decodeBase64url(s);
  if (!bytes) return null;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** `bytes` from the CSPRNG, base64url-encoded. 32 bytes = 256 bits. */
export function randomToken(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** SHA-256 of a string, base64url. Used to store single-use secrets by hash. */
export async function sha256(value: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', encoder.encode(value))));
}

/** Constant-time comparison of two byte arrays (length is not secret). */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function timingSafeEqualString(a: string, b: string): boolean {
  return timingSafeEqual(encoder.encode(a), encoder.encode(b));
}

/** Derives a purpose-bound HMAC key from the root secret (HKDF-SHA-256), so one leak never crosses purposes. */
export async function deriveHmacKey(rootSecret: string, purpose: string): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey('raw', fromBase64url(rootSecret), 'HKDF', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'HKDF', hash: 'SHA-256', salt: encoder.encode('gatehouse'), info: encoder.encode(purpose) },
    ikm,
    { name: 'HMAC', hash: 'SHA-256', length: 256 },
    false,
    ['sign', 'verify'],
  );
}

export async function hmac(key: CryptoKey, value: string): Promise<string> {
  return base64url(new Uint8Array(await crypto.subtle.sign('HMAC', key, encoder.encode(value))));
}

async function importKek(kek: string): Promise<CryptoKey> {
  return crypto.subtle.importKey('raw', fromBase64url(kek), 'AES-GCM', false, ['encrypt', 'decrypt']);
}

/**
 * AES-256-GCM under the key-encryption key with a random 96-bit IV: base64url(iv || ciphertext).
 * `aad` binds the ciphertext to its row (a key id, a user id), so it cannot be moved to another.
 */
export async function seal(kek: string, aad: string, plaintext: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: encoder.encode(aad) },
    await importKek(kek),
    encoder.encode(plaintext),
  );
  const out = new Uint8Array(12 + sealed.byteLength);
  out.set(iv);
  out.set(new Uint8Array(sealed), 12);
  return base64url(out);
}

/** Opens what `seal` produced with the same `aad`; throws when it was altered or moved. */
export async function unseal(kek: string, aad: string, sealed: string): Promise<string> {
  const bytes = fromBase64url(sealed);
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: bytes.slice(0, 12), additionalData: encoder.encode(aad) },
    await importKek(kek),
    bytes.slice(12),
  );
  return new TextDecoder().decode(plain);
}
