import { and, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import { emailSignIns, users, type User } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { byEmail, findUserById, userQuery } from '../identity/users';
import { hmac, randomToken, sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import { emailSignInMail } from '../mail/templates';
import { describeDevice } from '../lib/request-meta';
import type { SignInContext } from './risk';
import { completeFirstFactor, type SignInOutcome } from './second-factor';
import { lockQuery, mailHeld, recordAttemptStatement, throttleKey } from './throttle';
import { authUrl, safeReturnTo } from './urls';

/** Link and code live ten minutes; five wrong codes end the request. */
export const EMAIL_SIGN_IN_TTL_MS = 10 * 60_000;
export const EMAIL_CODE_ATTEMPTS = 5;
/** Eight digits: 26.6 bits (RFC-free, but above the 20 bits asked of one-time codes). */
const CODE_DIGITS = 8;

const codeDigest = (deps: Deps, id: string, code: string) => hmac(deps.keys.pending, `email-code:${id}:${code}`);

function randomCode(): string {
  // Rejection sampling: uniform over 0..10^8-1.
  const limit = Math.floor(2 ** 32 / 10 ** CODE_DIGITS) * 10 ** CODE_DIGITS;
  for (;;) {
    const n = crypto.getRandomValues(new Uint32Array(1))[0]!;
    if (n < limit) return String(n % 10 ** CODE_DIGITS).padStart(CODE_DIGITS, '0');
  }
}

const invalidLink = () =>
  new GatehouseError('invalid_link', 'This sign-in link is invalid, expired or already used. Ask for a new one.', { field: 'token' });
const wrongCode = () => new GatehouseError('invalid_code', 'That code is not right.', { field: 'code' });

/**
 * Starts an email sign-in: one mail with a link and an 8-digit code. The answer — and what happens
 * to the browser (a binding cookie, a code form with an attempt limit) — is the same for unknown
 * addresses, which get a row that no mail points to. Sending is limited per address (the `mail`
 * throttle: past it, the request goes on exactly like an unknown address's, with no mail) and, by
 * the route, per IP; the mail goes out after the response.
 */
export async function requestEmailSignIn(
  deps: Deps,
  email: string,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
  returnTo: string | null = null,
): Promise<{ cookie: string }> {
  const { db } = deps;
  const now = deps.now();
  const key = await throttleKey('mail', email);
  // The per-address mail limit and the user in one round trip; the writes in a second.
  const [[lock], [found]] = await failClosed('the database', () => db.batch([lockQuery(db, key), userQuery(db, byEmail(email))]));
  const held = mailHeld(lock, now);
  // Over the per-address limit: treated as an address with no account (same answer, no mail).
  const user = held ? undefined : found;
  const id = randomToken(16);
  const binding = randomToken(32);
  const token = randomToken(32);
  const code = randomCode();
  await failClosed('the database', async () => {
    // Expired requests are purged by the scheduled handler (src/db/retention.ts), not on this path.
    await db.batch([
      recordAttemptStatement(db, key, now),
      db.insert(emailSignIns).values({
        id,
        userId: user?.id ?? null,
        tokenHash: await sha256(token),
        codeHash: await codeDigest(deps, id, code),
        bindingHash: await sha256(binding),
        attempts: 0,
        requesterIp: meta.ip,
        requesterUserAgent: meta.userAgent?.slice(0, 256) ?? null,
        returnTo: returnTo ? safeReturnTo(returnTo) : null,
        expiresAt: now + EMAIL_SIGN_IN_TTL_MS,
        consumedAt: null,
        createdAt: now,
      }),
      auditInsert(db, {
        type: held ? 'mail_suppressed' : 'email_sign_in_requested',
        userId: found?.id ?? null,
        meta,
        ...(held ? { detail: { for: 'email_sign_in' } } : {}),
        at: now,
      }),
    ]);
  });
  if (user) {
    const link = authUrl(deps.config, '/auth/email-sign-in/link', { token });
    const device = meta.userAgent ? describeDevice(meta.userAgent) : 'an unknown browser';
    defer(deps.mailer.send(emailSignInMail(user.email, { link, code, minutes: EMAIL_SIGN_IN_TTL_MS / 60_000, device })));
  }
  return { cookie: `${id}.${binding}` };
}

function parseBinding(cookie: string | undefined): { id: string; binding: string } | null {
  const m = cookie ? /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(cookie) : null;
  return m ? { id: m[1]!, binding: m[2]! } : null;
}

export interface LinkView {
  /** Opened in the browser that asked: it may sign in at once. */
  sameBrowser: boolean;
  requestedAt: number;
  device: string;
  ip: string | null;
}

/** Looks at a link without using it: whether this browser asked for it, and who did. */
export async function peekEmailSignInLink(deps: Deps, token: string, bindingCookie: string | undefined): Promise<LinkView> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw invalidLink();
  const row = await failClosed('the database', async () =>
    deps.db
      .select()
      .from(emailSignIns)
      .where(eq(emailSignIns.tokenHash, await sha256(token)))
      .get(),
  );
  if (!row || row.consumedAt !== null || row.expiresAt <= deps.now() || !row.userId) throw invalidLink();
  const bound = parseBinding(bindingCookie);
  const sameBrowser = bound !== null && bound.id === row.id && timingSafeEqualString(await sha256(bound.binding), row.bindingHash);
  return {
    sameBrowser,
    requestedAt: row.createdAt,
    device: row.requesterUserAgent ? describeDevice(row.requesterUserAgent) : 'an unknown browser',
    ip: row.requesterIp,
  };
}

/**
 * Uses a link: one conditional UPDATE consumes it (of 20 concurrent uses exactly one gets a row
 * back), then the sign-in goes on as any first factor. The address is proven, so it is marked verified.
 */
export async function signInWithEmailLink(
  deps: Deps,
  token: string,
  ctx: SignInContext,
  defer: (task: Promise<void>) => void,
): Promise<{ outcome: SignInOutcome; returnTo: string }> {
  if (!/^[A-Za-z0-9_-]{43}$/.test(token)) throw invalidLink();
  const now = deps.now();
  const tokenHash = await sha256(token);
  const [row] = await failClosed('the database', () =>
    deps.db
      .update(emailSignIns)
      .set({ consumedAt: now })
      .where(and(eq(emailSignIns.tokenHash, tokenHash), isNull(emailSignIns.consumedAt), gt(emailSignIns.expiresAt, now)))
      .returning({ userId: emailSignIns.userId, returnTo: emailSignIns.returnTo }),
  );
  if (!row?.userId) throw invalidLink();
  return { outcome: await finish(deps, row.userId, ctx, defer, 'link'), returnTo: safeReturnTo(row.returnTo) };
}

/**
 * Uses the code, in the browser that asked (the binding cookie names the request). Every try
 * counts first (one UPDATE that also refuses past the limit), so parallel guesses cannot exceed it;
 * the right code then consumes the request with a second conditional UPDATE.
 */
export async function signInWithEmailCode(
  deps: Deps,
  input: { code: string; bindingCookie: string | undefined },
  ctx: SignInContext,
  defer: (task: Promise<void>) => void,
): Promise<SignInOutcome> {
  const bound = parseBinding(input.bindingCookie);
  if (!bound) throw new GatehouseError('invalid_request', 'Ask for a sign-in code in this browser first.', { field: 'code' });
  const code = input.code.replace(/[\s-]/g, '');
  if (!/^\d{8}$/.test(code)) throw new GatehouseError('invalid_code', 'Enter the 8-digit code from the email.', { field: 'code' });
  const now = deps.now();
  const bindingHash = await sha256(bound.binding);
  const digest = await codeDigest(deps, bound.id, code);
  const [row] = await failClosed('the database', () =>
    deps.db
      .update(emailSignIns)
      .set({ attempts: sql`${emailSignIns.attempts} + 1` })
      .where(
        and(
          eq(emailSignIns.id, bound.id),
          eq(emailSignIns.bindingHash, bindingHash),
          isNull(emailSignIns.consumedAt),
          gt(emailSignIns.expiresAt, now),
          lt(emailSignIns.attempts, EMAIL_CODE_ATTEMPTS),
        ),
      )
      .returning({ codeHash: emailSignIns.codeHash, userId: emailSignIns.userId, attempts: emailSignIns.attempts }),
  );
  if (!row)
    throw new GatehouseError(
      'too_many_attempts',
      'This code can no longer be used (expired, used, or too many tries). Ask for a new one.',
      { field: 'code' },
    );
  if (!timingSafeEqualString(row.codeHash, digest)) throw wrongCode();
  const [won] = await failClosed('the database', () =>
    deps.db
      .update(emailSignIns)
      .set({ consumedAt: now })
      .where(and(eq(emailSignIns.id, bound.id), isNull(emailSignIns.consumedAt)))
      .returning({ userId: emailSignIns.userId }),
  );
  if (!won?.userId) throw wrongCode();
  return finish(deps, won.userId, ctx, defer, 'code');
}

async function finish(
  deps: Deps,
  userId: string,
  ctx: SignInContext,
  defer: (task: Promise<void>) => void,
  via: 'link' | 'code',
): Promise<SignInOutcome> {
  let user: User | undefined = await failClosed('the database', () => findUserById(deps.db, userId));
  if (!user) throw invalidLink();
  if (user.emailVerifiedAt === null) {
    const now = deps.now();
    await failClosed('the database', () => deps.db.update(users).set({ emailVerifiedAt: now, updatedAt: now }).where(eq(users.id, userId)));
    user = { ...user, emailVerifiedAt: now };
  }
  return completeFirstFactor(deps, user, ['email'], ctx, { defer, detail: { method: `email_${via}` } });
}
