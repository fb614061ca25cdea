import type { Deps } from '../deps';
import { failClosed } from '../lib/errors';

/**
 * `/.well-known/jwks.json`: every published signing key (upcoming, current, and retired-but-live).
 * Keys are published KEY_PUBLISH_LEAD (≥ 10 min) before they sign, so 5 minutes of caching is safe.
 */
export async function jwksResponse(deps: Deps): Promise<Response> {
  const text = await failClosed('the key store', () => deps.signingKeys.jwksJson(deps.now()));
  return new Response(text, {
    headers: {
      'content-type': 'application/json',
      'cache-control': 'public, max-age=300, stale-while-revalidate=60',
      'access-control-allow-origin': '*',
    },
  });
}
