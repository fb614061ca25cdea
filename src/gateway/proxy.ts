import { GatehouseError } from '../lib/errors';

/**
 * Forwards to the origin: method, headers, query and body stream through untouched (no buffering),
 * redirects come back as they are (`redirect: manual`), WebSocket upgrades pass through. An origin
 * that cannot be reached is a 502, one that does not answer in time a 504 — never a hang.
 */
export async function forward(
  target: { fetcher: Fetcher | null; url: URL; timeoutMs: number },
  request: { method: string; body: ReadableStream | ArrayBuffer | null },
  headers: Headers,
): Promise<Response> {
  const init: RequestInit = {
    method: request.method,
    headers,
    body: request.method === 'GET' || request.method === 'HEAD' ? null : request.body,
    redirect: 'manual',
    signal: AbortSignal.timeout(target.timeoutMs),
  };
  try {
    return target.fetcher ? await target.fetcher.fetch(target.url.toString(), init) : await fetch(target.url.toString(), init);
  } catch (e) {
    if (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError'))
      throw new GatehouseError('gateway_timeout', 'The origin did not answer in time.');
    throw new GatehouseError('bad_gateway', 'The origin could not be reached.');
  }
}
