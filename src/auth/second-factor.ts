import type { BatchItem } from 'drizzle-orm/batch';
import { cancelScheduledDeletion } from './account-deletion';
import { jwtVerify, SignJWT, errors } from 'jose';
import type { User } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { assertNotBlocked, findUserById, findUserView, rolesOf, viewOf, type UserView, type UserWithRoles } from '../identity/users';
import { failClosed, GatehouseError, unavailable } from '../lib/errors';
import { assertLiveSession, startSession, type StartedSession } from '../sessions/session-lifecycle';
import type { SessionClaims } from '../sessions/session-token';
import { newSignInMail } from '../mail/templates';
import {
  checkDecisions,
  decisionStatements,
  pendingPurposes,
  purposeStates,
  type PurposeDecision,
  type PurposeState,
} from '../identity/consent-records';
import { acrOf, combineAmr } from './acr';
import {
  historyQuery,
  isRisky,
  markersOf,
  rememberStatement,
  riskFrom,
  trimHistoryStatement,
  type RiskAssessment,
  type SignInContext,
} from './risk';
import { assertNotLocked, clearAttemptsStatement, recordAttempt, throttleKey } from './throttle';
import { hasSecondFactor, secondFactorsFrom, secondFactorsQuery, verifySecondFactorCode, type SecondFactors } from './totp';
import { authUrl } from './urls';

/** A sign-in that passed its first factor waits five minutes for the second (in COOKIES.secondFactor). */
export const PENDING_TTL = 300;
const PENDING_TYPE = 'gh-2fa+jwt';
/** A sign-in whose factors are done waits ten minutes for the purposes it must accept (in COOKIES.purposes). */
export const PURPOSES_TTL = 600;
const PURPOSES_TYPE = 'gh-purposes+jwt';

export type SignInOutcome =
  | { kind: 'signed_in'; user: UserView; session: StartedSession }
  /** `pending` goes into COOKIES.secondFactor; the person is asked for one of `factors`. */
  | { kind: 'second_factor'; pending: string; factors: SecondFactors }
  /** `pending` goes into COOKIES.purposes; the person is asked to accept `purposes` (completePurposes). */
  | { kind: 'purposes'; pending: string; purposes: PurposeState[] };

interface Pending {
  sub: string;
  amr: string[];
  markers: string[];
  risky: boolean;
  firstSignIn: boolean;
}

/** A second factor: a code typed in, or a passkey assertion already verified for `userId`. */
export type SecondFactorProof = { kind: 'code'; code: string } | { kind: 'passkey'; userId: string; amr: string[] };

/**
 * After a first factor (password, email link or code, passkey): either a session at once, or —
 * when the account has a second factor and the policy asks for it here (always, or adaptive and the
 * device or network is new) — a pending sign-in that `completeSignIn` finishes. Risk inputs and the
 * decision are audited.
 */
export async function completeFirstFactor(
  deps: Deps,
  user: User | UserWithRoles,
  amr: string[],
  ctx: SignInContext,
  opts: { detail?: Record<string, unknown>; defer: (task: Promise<void>) => void; statements?: BatchItem<'sqlite'>[] },
): Promise<SignInOutcome> {
  // Every first factor ends here: a blocked account goes no further (not even to its second factor).
  assertNotBlocked(user);
  const now = deps.now();
  // The second factors and the sign-in history in one round trip.
  const [[counts], history] = await failClosed('the database', () =>
    deps.db.batch([secondFactorsQuery(deps.db, user.id), historyQuery(deps.db, user.id)]),
  );
  const factors = secondFactorsFrom(counts);
  const risk = riskFrom(history, await markersOf(ctx));
  const enrolled = hasSecondFactor(factors);
  const ask = enrolled && !amr.includes('mfa') && (deps.config.mfa.policy === 'always' || isRisky(risk));
  // The risk audit and the first factor's own writes (e.g. the password counter reset) commit with
  // the sign-in's batch, or alone when the second step is asked: one D1 round trip either way.
  const writes: BatchItem<'sqlite'>[] = [
    auditInsert(deps.db, {
      type: 'sign_in_risk',
      userId: user.id,
      meta: ctx.meta,
      detail: {
        newDevice: risk.newDevice,
        newCountry: risk.newCountry,
        newAsn: risk.newAsn,
        firstSignIn: risk.firstSignIn,
        country: ctx.country,
        asn: ctx.asn,
        secondFactorEnrolled: enrolled,
        policy: deps.config.mfa.policy,
        decision: ask ? 'second_factor' : 'allow',
      },
      at: now,
    }),
    ...(opts.statements ?? []),
  ];
  if (!ask) return finishSignIn(deps, user, amr, ctx, risk, { ...opts, statements: writes });
  await failClosed('the database', async () => {
    await deps.db.batch(writes as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]]);
  });
  const pending = await signPending(deps, PENDING_TYPE, PENDING_TTL, user.id, amr, { risky: isRisky(risk), ...risk }, now);
  return { kind: 'second_factor', pending, factors };
}

/** A sign-in half done, signed with the pending-sign-in key; `typ` says which step it waits for. */
const signPending = (
  deps: Deps,
  typ: string,
  ttl: number,
  sub: string,
  amr: string[],
  risk: { markers: string[]; risky: boolean; firstSignIn: boolean },
  now: number,
) =>
  new SignJWT({ amr, markers: risk.markers, risky: risk.risky, first: risk.firstSignIn })
    .setProtectedHeader({ alg: 'HS256', typ })
    .setSubject(sub)
    .setIssuedAt(Math.floor(now / 1000))
    .setExpirationTime(Math.floor(now / 1000) + ttl)
    .sign(deps.keys.pending);

/** The risk a pending sign-in carried from its first step (what the finished sign-in remembers and mails about). */
const riskOf = (pending: Pending): RiskAssessment => ({
  firstSignIn: pending.firstSignIn,
  newDevice: pending.risky,
  newCountry: false,
  newAsn: false,
  markers: pending.markers,
});

/** Reads a pending sign-in; null when it is missing, forged or older than its step allows. */
export async function readPending(deps: Deps, token: string | undefined, typ = PENDING_TYPE): Promise<Pending | null> {
  if (!token || token.length > 4096) return null;
  try {
    const { payload } = await jwtVerify(token, deps.keys.pending, {
      algorithms: ['HS256'],
      typ,
      currentDate: new Date(deps.now()),
      requiredClaims: ['sub', 'exp'],
    });
    const list = (v: unknown) => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null);
    const amr = list(payload.amr);
    const markers = list(payload.markers);
    if (!amr || !markers) return null;
    return { sub: payload.sub!, amr, markers, risky: payload.risky === true, firstSignIn: payload.first === true };
  } catch (e) {
    if (e instanceof errors.JOSEError) return null;
    throw e;
  }
}

/**
 * Checks a second factor for `userId`, with the per-user attempt limit: five wrong codes lock the
 * user's second factor for 30 s, doubling up to 15 minutes. Returns the methods it adds to amr.
 */
export async function checkSecondFactor(
  deps: Deps,
  userId: string,
  proof: SecondFactorProof,
  meta: RequestMeta,
): Promise<{ amr: string[]; method: string }> {
  if (proof.kind === 'passkey') {
    if (proof.userId !== userId) throw new GatehouseError('invalid_passkey', 'That passkey belongs to another account.');
    return { amr: proof.amr, method: 'passkey' };
  }
  const now = deps.now();
  await failClosed('the database', () => assertNotLocked(deps.db, 'second_factor', userId, now));
  try {
    const method = await verifySecondFactorCode(deps, userId, proof.code);
    await failClosed('the database', async () =>
      deps.db.batch([clearAttemptsStatement(deps.db, await throttleKey('second_factor', userId))]),
    );
    return { amr: ['otp'], method };
  } catch (e) {
    if (e instanceof GatehouseError && e.status === 400) {
      await failClosed('the database', async () => {
        await recordAttempt(deps.db, 'second_factor', userId, now);
        await auditInsert(deps.db, { type: 'second_factor_failed', userId, meta, detail: { reason: e.code }, at: now });
      });
    }
    throw e;
  }
}

/** Finishes a pending sign-in with its second factor. */
export async function completeSignIn(
  deps: Deps,
  pendingToken: string | undefined,
  proof: SecondFactorProof,
  ctx: SignInContext,
  opts: { defer: (task: Promise<void>) => void },
): Promise<SignInOutcome> {
  const pending = await readPending(deps, pendingToken);
  if (!pending)
    throw new GatehouseError('unauthenticated', 'This sign-in has expired (it waits five minutes for the second step). Sign in again.');
  const user = await failClosed('the database', () => findUserById(deps.db, pending.sub));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  const { amr: added, method } = await checkSecondFactor(deps, user.id, proof, ctx.meta);
  return finishSignIn(deps, user, combineAmr(pending.amr, added), ctx, riskOf(pending), { ...opts, detail: { secondFactor: method } });
}

/**
 * Step-up: a signed-in session proves a second factor and is replaced by a new session (new id, so
 * privileges never ride on an old identifier) with the combined amr and a new auth_time. A relayed
 * session stays relayed: the first factor was still never proven on this device.
 */
export async function stepUp(
  deps: Deps,
  session: SessionClaims,
  proof: SecondFactorProof,
  meta: RequestMeta,
): Promise<{ session: StartedSession }> {
  await assertLiveSession(deps, session);
  const { amr: added, method } = await checkSecondFactor(deps, session.sub, proof, meta);
  const user = await failClosed('the database', () => findUserView(deps.db, session.sub));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  const now = deps.now();
  const amr = combineAmr(session.amr, added);
  const started = await startSession(deps, { user, amr, meta, now, relayed: session.relayed });
  try {
    await deps.db.batch([
      auditInsert(deps.db, {
        type: 'step_up',
        userId: user.id,
        meta,
        detail: { from: session.sid, sid: started.record.sid, method, amr, acr: acrOf(amr) },
        at: now,
      }),
    ]);
  } catch (e) {
    await deps.sessions.revoke(user.id, started.record.sid).catch(() => undefined);
    throw unavailable('the database', e);
  }
  await deps.sessions.revoke(user.id, session.sid).catch(() => undefined);
  return { session: started };
}

/**
 * Creates the session of a completed sign-in, then commits its audit event and device/network
 * history in one batch (if that fails the session is revoked again: all or nothing). A risky
 * sign-in that is not the account's first sends a "new sign-in" mail after the response.
 */
async function finishSignIn(
  deps: Deps,
  user: User | UserWithRoles,
  amr: string[],
  ctx: SignInContext,
  risk: RiskAssessment,
  opts: {
    detail?: Record<string, unknown>;
    defer: (task: Promise<void>) => void;
    statements?: BatchItem<'sqlite'>[];
    /** The purposes were just answered (completePurposes): their records are in `statements`. */
    purposesAnswered?: boolean;
  },
): Promise<SignInOutcome> {
  // Read again when a second factor finished the sign-in (the account may have been blocked meanwhile);
  // one blocked after this read is refused by its session object (startSession).
  assertNotBlocked(user);
  const now = deps.now();
  // The one place every sign-in passes before it has a session: what the person must accept
  // (a required purpose never accepted, or at an older version) is asked here, so no sign-in
  // reaches an app, a page or a token without it.
  if (!opts.purposesAnswered) {
    const purposes = await failClosed('the database', () => pendingPurposes(deps.db, deps.config.purposes, user.id));
    if (purposes.length > 0) {
      const writes = opts.statements ?? [];
      if (writes.length > 0)
        await failClosed('the database', async () => {
          await deps.db.batch(writes as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]]);
        });
      const pending = await signPending(deps, PURPOSES_TYPE, PURPOSES_TTL, user.id, amr, { ...risk, risky: isRisky(risk) }, now);
      return { kind: 'purposes', pending, purposes };
    }
  }
  // A sign-in during a deletion's grace period keeps the account (or, once the deletion has begun, is refused).
  await cancelScheduledDeletion(deps, user, ctx.meta, opts.defer);
  const roles = 'roles' in user ? user.roles : await failClosed('the database', () => rolesOf(deps.db, user.id));
  const view = viewOf(user, roles);
  const session = await startSession(deps, { user: view, amr, meta: ctx.meta, now });
  try {
    const writes: BatchItem<'sqlite'>[] = [
      ...(opts.statements ?? []),
      auditInsert(deps.db, {
        type: 'sign_in',
        userId: user.id,
        meta: ctx.meta,
        detail: { sid: session.record.sid, amr, acr: acrOf(amr), ...opts.detail },
        at: now,
      }),
      rememberStatement(deps, user.id, risk.markers, now),
      trimHistoryStatement(deps, user.id),
    ];
    await deps.db.batch(writes as [BatchItem<'sqlite'>, ...BatchItem<'sqlite'>[]]);
  } catch (e) {
    await deps.sessions.revoke(user.id, session.record.sid).catch(() => undefined);
    throw e instanceof GatehouseError ? e : unavailable('the database', e);
  }
  if (isRisky(risk) && !risk.firstSignIn && deps.config.mfa.newSignInEmail) {
    const place = [ctx.country, ctx.asn !== null ? `network AS${ctx.asn}` : null].filter(Boolean).join(', ');
    opts.defer(
      deps.mailer.send(
        newSignInMail(user.email, {
          when: new Date(now),
          device: ctx.meta.userAgent?.slice(0, 120) ?? 'unknown browser',
          place,
          accountLink: authUrl(deps.config, '/auth/account'),
        }),
      ),
    );
  }
  return { kind: 'signed_in', user: view, session };
}

/** The purposes a sign-in waiting in COOKIES.purposes must still accept; null when there is no such sign-in (or it expired). */
export async function purposesWaiting(deps: Deps, pendingToken: string | undefined): Promise<PurposeState[] | null> {
  const pending = await readPending(deps, pendingToken, PURPOSES_TYPE);
  if (!pending) return null;
  return failClosed('the database', () => pendingPurposes(deps.db, deps.config.purposes, pending.sub));
}

/**
 * Finishes a sign-in that waited for its purposes: the answers must name declared purposes at the
 * versions in force and accept every required one still open; they are recorded in the sign-in's
 * own batch (both or neither).
 */
export async function completePurposes(
  deps: Deps,
  pendingToken: string | undefined,
  decisions: PurposeDecision[],
  ctx: SignInContext,
  opts: { defer: (task: Promise<void>) => void },
): Promise<SignInOutcome> {
  const pending = await readPending(deps, pendingToken, PURPOSES_TYPE);
  if (!pending) throw new GatehouseError('unauthenticated', 'This sign-in has expired (it waits ten minutes). Sign in again.');
  const user = await failClosed('the database', () => findUserById(deps.db, pending.sub));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  checkDecisions(deps.config.purposes, decisions);
  const states = await failClosed('the database', () => purposeStates(deps.db, deps.config.purposes, user.id));
  const open = states.find((p) => p.required && !p.accepted && !decisions.some((d) => d.purpose === p.id && d.granted));
  if (open) throw new GatehouseError('consent_required', `To continue, accept ${open.title}.`, { field: 'decisions' });
  const statements = decisionStatements(deps.db, user.id, states, decisions, { source: 'sign_in', meta: ctx.meta, at: deps.now() });
  return finishSignIn(deps, user, pending.amr, ctx, riskOf(pending), { ...opts, statements, purposesAnswered: true });
}
