import { acrOf } from '../auth/acr';
import type { Deps } from '../deps';
import { DEVICE_INTERVAL, formatCode, handle, HANDOFF_TTL_MS, startHandoff } from '../handoff/handoffs';
import type { Requester } from '../handoff/handoff-object';
import { randomToken } from '../lib/crypto';
import { failClosed, oauthError } from '../lib/errors';
import { audit } from '../identity/audit';
import { findUserView } from '../identity/users';
import type { Grant } from '../sessions/grants';
import { grantableScope, grantResources, type Client } from './clients';
import { userTokenResponse, type TokenResponse } from './issue';
import { DEVICE_CODE_GRANT } from './grants-and-scopes';
import type { VerifiedProof } from '../tokens/dpop';

/** The page where people type the user code. */
export const DEVICE_VERIFICATION_PATH = '/auth/device';

/** `dc1.<user code>.<secret>`: the user code routes the token endpoint to the handoff's object. */
const DEVICE_CODE = /^dc1\.([BCDFGHJKLMNPQRSTVWXZ]{8})\.([A-Za-z0-9_-]{43})$/;

/**
 * RFC 8628 §3.1–3.2: a device (TV, CLI) asks to be authorized. A Handoff object named by the user
 * code holds it for five minutes; the device polls the token endpoint with the device code.
 */
export async function startDeviceAuthorization(
  deps: Deps,
  client: Client,
  params: Record<string, string | undefined>,
  requester: Requester,
): Promise<Record<string, string | number>> {
  if (!client.grantTypes.includes(DEVICE_CODE_GRANT))
    throw oauthError('unauthorized_client', 'This client may not use the device authorization grant.');
  // As at /authorize: unknown scopes are ignored and ones the client may not have dropped.
  const asked = (params.scope ?? client.scopes.filter((s) => s !== 'offline_access').join(' ')).split(' ').filter(Boolean);
  const scope = grantableScope(asked, client, grantResources({ client, resources: [] }));
  if (scope.length === 0) throw oauthError('invalid_scope', 'None of the requested scopes is allowed for this client.');
  const acrValues = (params.acr_values ?? '').split(' ').filter(Boolean).slice(0, 10);
  const secret = randomToken(32);
  const { code } = await startHandoff(deps, {
    kind: 'device',
    waiterSecret: secret,
    approverSecret: null,
    requester,
    // What the approving session must satisfy (a client's requireMfa, the device's acr_values): checked at approval.
    detail: { clientId: client.clientId, clientName: client.name, scope, acr: { wanted: acrValues, essential: client.requireMfa } },
  });
  const verification = `${deps.config.publicUrl.origin}${DEVICE_VERIFICATION_PATH}`;
  return {
    device_code: `dc1.${handle(code, secret)}`,
    user_code: formatCode(code),
    verification_uri: verification,
    verification_uri_complete: `${verification}?user_code=${formatCode(code)}`,
    expires_in: HANDOFF_TTL_MS / 1000,
    interval: DEVICE_INTERVAL,
  };
}

/**
 * RFC 8628 §3.4–3.5 at the token endpoint: authorization_pending, slow_down, expired_token,
 * access_denied, or — once — the tokens for the user who approved.
 */
export async function exchangeDeviceCode(
  deps: Deps,
  client: Client,
  deviceCode: string | undefined,
  proof: VerifiedProof | null,
): Promise<TokenResponse> {
  if (!deviceCode) throw oauthError('invalid_request', 'device_code is required.');
  const m = DEVICE_CODE.exec(deviceCode);
  if (!m) throw oauthError('invalid_grant', 'The device code is not valid.');
  const now = deps.now();
  const result = await deps.handoffs.poll(m[1]!, m[2]!, client.clientId, now);
  switch (result.status) {
    case 'pending':
      throw oauthError('authorization_pending', 'The user has not answered yet; poll again after the interval.');
    case 'slow_down':
      throw oauthError('slow_down', 'Polling too fast: the interval is now 5 seconds longer.');
    case 'expired':
      throw oauthError('expired_token', 'The device code has expired; start again.');
    case 'denied':
      throw oauthError('access_denied', 'The user denied the request.');
    case 'invalid':
      throw oauthError('invalid_grant', 'The device code is not valid (unknown, used, or for another client).');
  }
  const { approval, detail } = result;
  const user = await failClosed('the database', () => findUserView(deps.db, approval.userId));
  if (!user) throw oauthError('invalid_grant', 'The user no longer exists.');
  const grant: Grant = {
    clientId: client.clientId,
    scope: detail['scope'] as string[],
    sid: approval.sid,
    authTime: approval.authTime,
    amr: approval.amr,
    acr: acrOf(approval.amr),
    // The approval page names no API: only a first-party client's grant reaches its resources.
    resources: grantResources({ client, resources: [] }),
    claims: null,
    // RFC 9449 §5: a public client's refresh tokens are bound to the key it proved.
    dpopJkt: client.isPublic ? (proof?.jkt ?? null) : null,
  };
  const wantsRefresh = client.grantTypes.includes('refresh_token');
  const refresh = wantsRefresh
    ? await deps.sessions.createRefreshFamily(
        user.id,
        grant,
        {
          idleTtlMs: (client.refreshTokenIdleTtl ?? deps.config.tokens.refreshIdleTtl) * 1000,
          absoluteTtlMs: (client.refreshTokenAbsoluteTtl ?? deps.config.tokens.refreshAbsoluteTtl) * 1000,
        },
        now,
      )
    : null;
  // The user's object makes nothing for a blocked account (approved before the block, polled after).
  if (wantsRefresh ? refresh === null : await deps.sessions.isBlocked(user.id))
    throw oauthError('invalid_grant', 'The account is blocked.');
  await failClosed('the database', () =>
    audit(deps.db, {
      type: 'handoff_redeemed',
      userId: user.id,
      meta: { ip: null, userAgent: null },
      detail: { kind: 'device', clientId: client.clientId, approvedBy: approval.sid },
      at: now,
    }),
  );
  return userTokenResponse(deps, {
    client,
    userId: user.id,
    user,
    grant,
    nonce: null,
    now,
    grantId: refresh?.familyId ?? randomToken(16),
    gty: 'device_code',
    resource: null,
    jkt: proof?.jkt ?? null,
    ...(refresh ? { refresh } : {}),
  });
}
