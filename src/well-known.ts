import type { Env } from './config';
import { depsFor } from './deps';
import { METADATA_PATHS, metadataResponse } from './oauth/discovery';
import { jwksResponse } from './tokens/jwks';

const PATHS = new Set(['/.well-known/jwks.json', ...METADATA_PATHS.map((p) => `/.well-known${p}`)]);

/**
 * The public documents every relying party and API fetches most (discovery and the JWKS), answered
 * before the router: the same responses the app's routes give (oauth/discovery.ts, tokens/jwks.ts),
 * without the framework's work per request. Anything else — another method, host or path, a
 * configuration or key-store error, which the app renders for its channel — is left to the app (null).
 */
export async function wellKnown(request: Request, env: Env): Promise<Response | null> {
  if (request.method !== 'GET') return null;
  const url = new URL(request.url);
  if (!PATHS.has(url.pathname)) return null;
  try {
    const deps = await depsFor(env);
    if (url.host !== deps.config.publicUrl.host) return null;
    return url.pathname === '/.well-known/jwks.json' ? await jwksResponse(deps) : metadataResponse(deps);
  } catch {
    return null;
  }
}
