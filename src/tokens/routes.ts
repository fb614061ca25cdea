import { router } from '../lib/router';
import { failClosed } from '../lib/errors';

/** `/.well-known/jwks.json`: every published signing key (upcoming, current, and retired-but-live). */
export const jwksRoutes = router('problem');

jwksRoutes.get('/jwks.json', async (c) => {
  const { deps } = c.var;
  const jwks = await failClosed('the key store', () => deps.signingKeys.jwksJson(deps.now()));
  // Keys are published KEY_PUBLISH_LEAD (≥ 10 min) before they sign, so 5 minutes of caching is safe.
  return c.body(jwks, 200, {
    'content-type': 'application/json',
    'cache-control': 'public, max-age=300, stale-while-revalidate=60',
    'access-control-allow-origin': '*',
  });
});
