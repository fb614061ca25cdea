import type { Deps } from '../deps';
import { audit, type RequestMeta } from '../identity/audit';
import { GatehouseError } from '../lib/errors';
import { HELD_BODY_LIMIT, HELD_TTL_MS, type HeldRequest } from '../sessions/held-requests';
import type { Identity } from './identity';
import { routeKey } from './route-table';
import type { Route } from './routes-config';

/** The query parameter that brings a browser back to replay its held request after step-up. */
export const RESUME_PARAM = 'gh_resume';

export const notHeld = () =>
  new GatehouseError(
    'request_not_held',
    'This held request was already replayed, has expired (requests are held for 5 minutes) or belongs to another page.',
  );

/**
 * Holds a non-GET request while its browser steps up (≤ 1 MiB, 5 minutes) in the user's Durable
 * Object, with the host and route that held it. Returns the id the way back carries. Only a
 * request sent by this site's own pages (`sameOrigin`: Origin and Fetch Metadata agree) is held: a
 * form another site (even a sibling host) submits would otherwise be replayed after the person
 * steps up, its origin no longer visible.
 */
export async function holdRequest(
  deps: Deps,
  r: { request: Request; sameOrigin: boolean; who: Identity; route: Route; host: string; url: string; meta: RequestMeta },
): Promise<string> {
  if (!r.sameOrigin)
    throw new GatehouseError(
      'forbidden',
      'This action needs a stronger sign-in, and requests from another site are not held for it. Start again from this site.',
    );
  const body = await readLimited(r.request, HELD_BODY_LIMIT);
  if (!body) throw new GatehouseError('payload_too_large', `A request held during step-up may be at most ${HELD_BODY_LIMIT} bytes.`);
  const now = deps.now();
  const id = await deps.sessions.holdRequest(r.who.sub, {
    method: r.request.method,
    url: r.url,
    host: r.host,
    routeKey: routeKey(r.route),
    contentType: r.request.headers.get('content-type'),
    body,
    sid: r.who.sid!,
    expiresAt: now + HELD_TTL_MS,
  });
  await audit(deps.db, {
    type: 'request_held',
    userId: r.who.sub,
    meta: r.meta,
    detail: { method: r.request.method, url: r.url, host: r.host, sid: r.who.sid },
    at: now,
  }).catch(() => undefined);
  return id;
}

/** The held request a resume id names, for this user, if it is still held (not taken yet). */
export async function findHeldRequest(deps: Deps, who: Identity | null, id: string): Promise<Omit<HeldRequest, 'body'> | null> {
  if (who?.via !== 'session' || !/^[A-Za-z0-9_-]{22}$/.test(id)) return null;
  return deps.sessions.peekHeldRequest(who.sub, id, deps.now());
}

/**
 * Whether a held request may be replayed by this request: the same URL, host and route — the
 * route found again for the held method — whose policy the caller has just passed. Taking it is
 * the caller's next step (once: of concurrent replays one wins).
 */
export const mayReplay = (held: Omit<HeldRequest, 'body'>, at: { url: string; host: string; route: Route }) =>
  held.url === at.url && held.host === at.host && held.routeKey === routeKey(at.route);

/**
 * Replays a held request once, for the same user, URL, host and route it was held for (the
 * policy the caller just applied was that route's); anything else — no such request, another
 * user's, another page's, already replayed — is `request_not_held`.
 */
export async function replayHeldRequest(
  deps: Deps,
  r: { held: Omit<HeldRequest, 'body'> | null; who: Identity | null; id: string },
  at: { url: string; host: string; route: Route },
  meta: RequestMeta,
): Promise<HeldRequest> {
  if (!r.held || !r.who || !mayReplay(r.held, at)) throw notHeld();
  return takeHeldRequest(deps, r.who, r.id, meta);
}

async function takeHeldRequest(deps: Deps, who: Identity, id: string, meta: RequestMeta): Promise<HeldRequest> {
  const now = deps.now();
  const held = await deps.sessions.takeHeldRequest(who.sub, id, now);
  if (!held) throw notHeld();
  await audit(deps.db, {
    type: 'request_replayed',
    userId: who.sub,
    meta,
    detail: { method: held.method, url: held.url, host: held.host, from: held.sid, sid: who.sid },
    at: now,
  }).catch(() => undefined);
  return held;
}

/**
 * Takes the resume marker off a raw query string, leaving every other byte as the browser sent it
 * (`?flag`, `%20`, repeated names): the URL the origin sees — and the one a replay must match — is
 * the one the held request had.
 */
export function takeResumeParam(search: string): { id: string | null; rest: string } {
  if (!search.includes(`${RESUME_PARAM}=`)) return { id: null, rest: search };
  let id: string | null = null;
  const kept: string[] = [];
  for (const part of search.slice(1).split('&')) {
    if (part.startsWith(`${RESUME_PARAM}=`)) id ??= part.slice(RESUME_PARAM.length + 1);
    else kept.push(part);
  }
  return { id, rest: kept.length ? `?${kept.join('&')}` : '' };
}

export const withResume = (pathAndQuery: string, id: string) =>
  `${pathAndQuery}${pathAndQuery.includes('?') ? '&' : '?'}${RESUME_PARAM}=${encodeURIComponent(id)}`;

/** The whole body if it is at most `limit` bytes, else null (stops reading at the limit). */
async function readLimited(request: Request, limit: number): Promise<ArrayBuffer | null> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > limit || !request.body) return declared > limit ? null : new ArrayBuffer(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out.buffer;
}
