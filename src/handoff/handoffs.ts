import { acrOf, stepUpTarget, type AcrDemand } from '../auth/acr';
import { appAccessBlocker } from '../auth/app-access';
import { authorizeSensitiveAction, type Proof } from '../auth/recent-auth';
import { secondFactorsOf } from '../auth/totp';
import type { Deps } from '../deps';
import { audit, type RequestMeta } from '../identity/audit';
import { findUserView } from '../identity/users';
import { randomToken, sha256 } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import { assertLiveSession, startSession, type StartedSession } from '../sessions/session-lifecycle';
import type { SessionClaims } from '../sessions/session-token';
import type { Approval, HandoffKind, HandoffView, Requester, Transition } from './handoff-object';

/** Handoffs live five minutes unless a flow says otherwise (the alarm expires them). */
export const HANDOFF_TTL_MS = 5 * 60_000;
/** RFC 8628 §3.2: the default polling interval, seconds. */
export const DEVICE_INTERVAL = 5;

/**
 * Short codes: 8 letters from 20 consonants (RFC 8628 §6.1: no vowels, so no words; no look-alikes),
 * 34.5 bits, shown as XXXX-XXXX. The code names the handoff's Durable Object, so a typed code
 * finds its object with no D1 lookup. Guessing is limited per IP by the credential rate limit.
 */
const ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
export const CODE_LENGTH = 8;

export function newCode(): string {
  let out = '';
  while (out.length < CODE_LENGTH) {
    const byte = crypto.getRandomValues(new Uint8Array(1))[0]!;
    if (byte < 240) out += ALPHABET[byte % 20]; // 240 = 12 × 20: unbiased
  }
  return out;
}

/** Accepts what people type (any case, spaces, dashes); null when it cannot be a code. */
export function normaliseCode(input: string | undefined | null): string | null {
  if (!input || input.length > 32) return null;
  const code = input.toUpperCase().replace(/[\s-]/g, '');
  return code.length === CODE_LENGTH && [...code].every((c) => ALPHABET.includes(c)) ? code : null;
}

export const formatCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

/** `<code>.<secret>`: what a device keeps (in a cookie, or inside a device_code) to act on a handoff. */
export const handle = (code: string, secret: string) => `${code}.${secret}`;
export function parseHandle(value: string | undefined | null): { code: string; secret: string } | null {
  const m = value ? /^([BCDFGHJKLMNPQRSTVWXZ]{8})\.([A-Za-z0-9_-]{43})$/.exec(value) : null;
  return m ? { code: m[1]!, secret: m[2]! } : null;
}

const failure = (t: { reason: 'unknown' | 'expired' | 'state' | 'forbidden' }) => {
  switch (t.reason) {
    case 'expired':
      return new GatehouseError('expired_token', 'This request has expired. Start again on the other device.');
    case 'state':
      return new GatehouseError('conflict', 'This request was already answered.');
    case 'forbidden':
      return new GatehouseError('forbidden', 'You cannot answer this request.');
    default:
      return new GatehouseError('not_found', 'No request with this code. Check the code and try again.', { field: 'code' });
  }
};
const unwrap = <T>(t: Transition<T>): T => {
  if (!t.ok) throw failure(t);
  return t.value;
};

/** Starts a handoff under a fresh code (a new code in the rare case one is taken). */
export async function startHandoff(
  deps: Deps,
  init: {
    kind: HandoffKind;
    waiterSecret: string | null;
    approverSecret: string | null;
    requester: Requester | null;
    detail: Record<string, unknown>;
    ttlMs?: number;
  },
): Promise<{ code: string; expiresAt: number }> {
  const now = deps.now();
  const ttlMs = init.ttlMs ?? HANDOFF_TTL_MS;
  for (let attempt = 0; attempt < 5; attempt++) {
    const code = newCode();
    const started = await deps.handoffs.start(code, {
      kind: init.kind,
      code,
      waiterHash: init.waiterSecret ? await sha256(init.waiterSecret) : null,
      approverHash: init.approverSecret ? await sha256(init.approverSecret) : null,
      requester: init.requester,
      detail: init.detail,
      now,
      ttlMs,
      interval: DEVICE_INTERVAL,
    });
    if (started) return { code, expiresAt: now + ttlMs };
  }
  throw new GatehouseError('temporarily_unavailable', 'Could not start the request; try again.');
}

/** Flow 1, on the new device: a handoff its QR code lets a signed-in phone approve. */
export async function startQrSignIn(deps: Deps, requester: Requester) {
  const waiterSecret = randomToken(32);
  const approverSecret = randomToken(32);
  const { code, expiresAt } = await startHandoff(deps, { kind: 'qr', waiterSecret, approverSecret, requester, detail: {} });
  return { code, expiresAt, waiter: handle(code, waiterSecret), approver: handle(code, approverSecret) };
}

/** Flow 2, on the signed-in device: hand this session's user and page to another device. */
export async function startContinue(deps: Deps, session: SessionClaims, returnTo: string) {
  await assertLiveSession(deps, session);
  const ownerSecret = randomToken(32);
  const { code, expiresAt } = await startHandoff(deps, {
    kind: 'continue',
    waiterSecret: null,
    approverSecret: ownerSecret,
    requester: null,
    detail: { userId: session.sub, returnTo },
  });
  return { code, expiresAt, owner: handle(code, ownerSecret) };
}

/** Flow 2, on the other device: join by code; it then waits for the original device to confirm. */
export async function joinContinue(deps: Deps, code: string, requester: Requester) {
  const waiterSecret = randomToken(32);
  const view = unwrap(await deps.handoffs.join(code, 'continue', waiterSecret, requester, deps.now()));
  return { view, waiter: handle(code, waiterSecret) };
}

/** The handoff as its approver sees it (`approverSecret`: the QR link's or the original device's; none for device grants). */
export async function viewHandoff(deps: Deps, kind: HandoffKind, code: string, approverSecret?: string): Promise<HandoffView> {
  const view = await deps.handoffs.view(code, kind, deps.now(), approverSecret);
  if (!view) throw failure({ reason: 'unknown' });
  return view;
}

/** The original device's view of its continue handoff (who joined), by its own secret. */
export async function ownContinue(deps: Deps, own: { code: string; secret: string }): Promise<HandoffView> {
  const status = await handoffStatus(deps, 'continue', 'own', own);
  const view = await viewHandoff(deps, 'continue', own.code, own.secret);
  return { ...view, state: status.state };
}

/**
 * A handoff as the person about to answer it sees it — only while it still waits for an answer:
 * one answered (or a device code used) is a 409, so no page offers to answer it twice.
 */
export async function pendingHandoff(deps: Deps, kind: HandoffKind, code: string, approverSecret?: string): Promise<HandoffView> {
  const view = await viewHandoff(deps, kind, code, approverSecret);
  if (view.state !== 'pending')
    throw kind === 'device'
      ? new GatehouseError('conflict', 'This code was already used.', { field: 'code' })
      : new GatehouseError('conflict', 'This request was already answered.');
  return view;
}

/** The original device's continue handoff, once another device joined it and until it is answered. */
export async function joinedContinue(deps: Deps, own: { code: string; secret: string }): Promise<HandoffView> {
  const view = await ownContinue(deps, own);
  if (view.state !== 'pending' || !view.joined) throw new GatehouseError('conflict', 'There is nothing to confirm now.');
  return view;
}

/**
 * Approves or denies as the signed-in user (`approverSecret`: the QR link's or the original
 * device's). Approving signs another device in, so it is a sensitive action (auth/recent-auth.ts:
 * a recent sign-in on this device, or a proof given now); a device grant's client may also demand
 * a stronger sign-in (requireMfa, acr_values), which the approving session must have first.
 */
export async function decideHandoff(
  deps: Deps,
  kind: HandoffKind,
  code: string,
  session: SessionClaims,
  input: { approve: boolean; approverSecret?: string; proof?: Proof | undefined },
  meta: RequestMeta,
): Promise<HandoffView> {
  if (input.approve) {
    if (kind === 'device') {
      // An unknown or expired handoff has no demand to check: decide() below says what happened.
      const view = await viewHandoff(deps, 'device', code).catch((e: unknown) => {
        if (e instanceof GatehouseError && e.status < 500) return null;
        throw e;
      });
      const demand = view?.detail['acr'] as AcrDemand | undefined;
      const acr = demand ? await stepUpTarget(acrOf(session.amr), demand, () => secondFactorsOf(deps, session.sub)) : null;
      if (acr)
        throw new GatehouseError('second_factor_required', 'This device needs a stronger sign-in. Confirm with your second factor first.', {
          acr,
        });
      // What authorize would ask first (auth/app-access.ts) holds a device code back too: no app gets
      // tokens for someone who has not accepted the terms in force or given what it needs.
      const clientId = view?.detail['clientId'];
      const blocker = typeof clientId === 'string' ? await appAccessBlocker(deps, session.sub, clientId) : null;
      if (blocker === 'purposes')
        throw new GatehouseError('consent_required', 'Accept the updated terms first: sign out, sign in again, then approve this device.');
      if (blocker === 'profile')
        throw new GatehouseError(
          'interaction_required',
          'This app needs more of your profile: complete it on your account page, then approve this device.',
          {
            field: 'profile',
          },
        );
    }
    await authorizeSensitiveAction(deps, session, input.proof, meta);
  } else await assertLiveSession(deps, session);
  const approval: Approval = { userId: session.sub, sid: session.sid, amr: session.amr, authTime: session.authTime };
  const now = deps.now();
  const view = unwrap(
    await deps.handoffs.decide(code, kind, {
      approve: input.approve,
      approval,
      ...(input.approverSecret ? { approverSecret: input.approverSecret } : {}),
      now,
    }),
  );
  await failClosed('the database', () =>
    audit(deps.db, {
      type: input.approve ? 'handoff_approved' : 'handoff_denied',
      userId: session.sub,
      meta,
      detail: { kind, sid: session.sid, requester: view.requester?.device ?? null },
      at: now,
    }),
  );
  return view;
}

/**
 * The waiting device takes the approval (once) and gets a session of its own for the approving
 * user — new id and secret, listed and revocable like any other — carrying the approver's sign-in
 * methods and time. Returns it with the handoff's detail (continue: where to go).
 */
export async function redeemHandoff(
  deps: Deps,
  kind: 'qr' | 'continue',
  waiter: { code: string; secret: string },
  meta: RequestMeta,
): Promise<{ session: StartedSession; detail: Record<string, unknown> }> {
  const now = deps.now();
  const { approval, detail } = unwrap(await deps.handoffs.redeem(waiter.code, kind, waiter.secret, now));
  const session = await sessionFor(deps, approval, meta, now);
  await failClosed('the database', () =>
    audit(deps.db, {
      type: 'handoff_redeemed',
      userId: approval.userId,
      meta,
      detail: { kind, sid: session.record.sid, approvedBy: approval.sid },
      at: now,
    }),
  );
  return { session, detail };
}

/**
 * The waiting device's session: it keeps the approving session's sign-in (methods and time) and is
 * marked relayed, so handing over never launders a stale sign-in into a recent one
 * (docs/handoff.md, "What a relayed session may do").
 */
async function sessionFor(deps: Deps, approval: Approval, meta: RequestMeta, now: number): Promise<StartedSession> {
  const user = await failClosed('the database', () => findUserView(deps.db, approval.userId));
  if (!user) throw new GatehouseError('forbidden', 'The account that approved this no longer exists.');
  return startSession(deps, { user, amr: approval.amr, meta, now, authTime: approval.authTime, relayed: true });
}

/** What a listening device is told, for one that polls instead. */
export async function handoffStatus(deps: Deps, kind: HandoffKind, role: 'wait' | 'own', h: { code: string; secret: string }) {
  const status = await deps.handoffs.status(h.code, kind, role, h.secret, deps.now());
  if (!status) throw failure({ reason: 'unknown' });
  return status;
}

/** Forwards a WebSocket upgrade to the handoff's object with the caller's secret and role. */
export function openSocket(
  deps: Deps,
  request: Request,
  kind: HandoffKind,
  role: 'wait' | 'own',
  h: { code: string; secret: string },
): Promise<Response> {
  const headers = new Headers({ upgrade: 'websocket', 'x-handoff-secret': h.secret, 'x-handoff-kind': kind, 'x-handoff-role': role });
  return deps.handoffs.fetch(h.code, new Request(request.url, { headers }));
}
