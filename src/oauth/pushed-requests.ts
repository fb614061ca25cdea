import { and, eq, gt, isNull } from 'drizzle-orm';
import { pushedAuthorizations } from '../db/schema';
import type { Deps } from '../deps';
import { randomToken, sha256 } from '../lib/crypto';
import { failClosed, oauthError } from '../lib/errors';

/** RFC 9126: a pushed request lives long enough to sign in (with a second factor) through it. */
export const PUSHED_TTL_S = 300;
const PREFIX = 'urn:ietf:params:oauth:request_uri:';
const URN = /^urn:ietf:params:oauth:request_uri:([A-Za-z0-9_-]{43})$/;

/** Stores a validated authorization request for `clientId`; returns the request_uri and its lifetime. */
export async function pushRequest(
  deps: Deps,
  clientId: string,
  params: Record<string, string>,
): Promise<{ request_uri: string; expires_in: number }> {
  const secret = randomToken(32);
  const now = deps.now();
  await failClosed('the database', async () => {
    // Expired requests are purged by the scheduled handler (src/db/retention.ts); pushedParams refuses them.
    await deps.db.batch([
      deps.db.insert(pushedAuthorizations).values({
        idHash: await sha256(secret),
        clientId,
        params: JSON.stringify(params),
        expiresAt: now + PUSHED_TTL_S * 1000,
        usedAt: null,
      }),
    ]);
  });
  return { request_uri: `${PREFIX}${secret}`, expires_in: PUSHED_TTL_S };
}

/**
 * The parameters a request_uri stands for (RFC 9126 §4): only for the client that pushed them,
 * while they live and until a code was issued from them. Thrown errors are for an error page: the
 * redirect URI is not known to be this request's until it resolves.
 */
export async function pushedParams(
  deps: Deps,
  requestUri: string,
  clientId: string | undefined,
): Promise<{ params: Record<string, string>; id: string }> {
  // RFC 9101 §7: a request_uri to fetch is not supported (nothing is fetched); only our own URNs are.
  if (!requestUri.startsWith(PREFIX))
    throw oauthError('request_uri_not_supported', 'request_uri is supported only as a pushed request (RFC 9126).');
  const m = URN.exec(requestUri);
  const gone = () => oauthError('invalid_request_uri', 'The request_uri is unknown, expired or already used.');
  if (!m || !clientId) throw gone();
  const idHash = await sha256(m[1]!);
  const row = await failClosed('the database', () =>
    deps.db
      .select()
      .from(pushedAuthorizations)
      .where(
        and(
          eq(pushedAuthorizations.idHash, idHash),
          eq(pushedAuthorizations.clientId, clientId),
          gt(pushedAuthorizations.expiresAt, deps.now()),
          isNull(pushedAuthorizations.usedAt),
        ),
      )
      .get(),
  );
  if (!row) throw gone();
  return { params: JSON.parse(row.params) as Record<string, string>, id: idHash };
}

/** Marks a pushed request used as its code is issued: true for exactly one caller. */
export async function usePushedRequest(deps: Deps, id: string): Promise<boolean> {
  const rows = await failClosed('the database', () =>
    deps.db
      .update(pushedAuthorizations)
      .set({ usedAt: deps.now() })
      .where(and(eq(pushedAuthorizations.idHash, id), isNull(pushedAuthorizations.usedAt), gt(pushedAuthorizations.expiresAt, deps.now())))
      .returning({ id: pushedAuthorizations.idHash }),
  );
  return rows.length === 1;
}
