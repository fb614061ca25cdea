import { and, eq, isNull, sql } from 'drizzle-orm';
import { Secret, TOTP } from 'otpauth';
import type { Database } from '../db/client';
import { recoveryCodes, totpCredentials, users } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type RequestMeta } from '../identity/audit';
import { shownEmail } from '../identity/email';
import { secondFactorResetStatements } from '../identity/second-factors';
import { type ChangeBy, runStatements } from '../identity/user-records';
import { seal, sha256, unseal } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';

/** RFC 6238 with the parameters every authenticator app supports: SHA-1, 6 digits, 30 s. */
const PERIOD = 30;
const DIGITS = 6;
/** One step either side, for clock drift. */
const WINDOW = 1;
export const RECOVERY_CODE_COUNT = 10;
/** 10 characters of Crockford-style base32 (no I, L, O, U): 50 bits each. */
const RECOVERY_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

const totpFor = (secret: Secret, label = '', issuer = '') =>
  new TOTP({ issuer, label, algorithm: 'SHA1', digits: DIGITS, period: PERIOD, secret });

export const stepAt = (now: number) => Math.floor(now / 1000 / PERIOD);

const codeProblem = (message: string, code: 'invalid_code' | 'code_reused' = 'invalid_code') =>
  new GatehouseError(code, message, { field: 'code' });

/**
 * Starts (or restarts) TOTP enrolment: a fresh 160-bit secret, sealed at rest, unconfirmed until the
 * first code is entered. A confirmed authenticator must be removed before another is enrolled.
 */
export async function startTotpEnrollment(deps: Deps, user: { id: string; email: string }): Promise<{ secret: string; uri: string }> {
  const now = deps.now();
  const existing = await failClosed('the database', () =>
    deps.db.select().from(totpCredentials).where(eq(totpCredentials.userId, user.id)).get(),
  );
  if (existing?.confirmedAt)
    throw new GatehouseError('already_enrolled', 'An authenticator app is already set up. Remove it first to set up another.');
  const secret = new Secret({ size: 20 });
  const sealed = await seal(deps.config.keyEncryptionKey, `totp:${user.id}`, secret.base32);
  await failClosed('the database', () =>
    deps.db
      .insert(totpCredentials)
      .values({ userId: user.id, secretEncrypted: sealed, lastStep: 0, confirmedAt: null, createdAt: now })
      .onConflictDoUpdate({ target: totpCredentials.userId, set: { secretEncrypted: sealed, lastStep: 0, createdAt: now } }),
  );
  const uri = totpFor(secret, labelOf(deps, user.email), deps.config.webauthn.rpName).toString();
  return { secret: secret.base32, uri };
}

/** The account's name in the authenticator app: its address, or (an account without one) Gatehouse's name. */
const labelOf = (deps: Deps, email: string) => shownEmail(email) ?? `${deps.config.webauthn.rpName} account`;

/** The secret of an enrolment that still waits for its first code (to show it again), or null. */
export async function pendingTotpSecret(deps: Deps, user: { id: string; email: string }): Promise<{ secret: string; uri: string } | null> {
  const row = await failClosed('the database', () =>
    deps.db.select().from(totpCredentials).where(eq(totpCredentials.userId, user.id)).get(),
  );
  if (!row || row.confirmedAt) return null;
  const base32 = await unseal(deps.config.keyEncryptionKey, `totp:${user.id}`, row.secretEncrypted);
  return { secret: base32, uri: totpFor(Secret.fromBase32(base32), labelOf(deps, user.email), deps.config.webauthn.rpName).toString() };
}

/**
 * Checks a code against the user's authenticator and claims its time step in one conditional
 * UPDATE: of two requests with the same code (or any code of an older step), one wins.
 * `confirmed` false checks the pending enrolment instead.
 */
async function claimTotpStep(deps: Deps, userId: string, code: string, confirmed: boolean): Promise<boolean> {
  const row = await failClosed('the database', () =>
    deps.db.select().from(totpCredentials).where(eq(totpCredentials.userId, userId)).get(),
  );
  if (!row || Boolean(row.confirmedAt) !== confirmed) return false;
  const base32 = await unseal(deps.config.keyEncryptionKey, `totp:${userId}`, row.secretEncrypted);
  const now = deps.now();
  const delta = totpFor(Secret.fromBase32(base32)).validate({ token: code, timestamp: now, window: WINDOW });
  if (delta === null) return false;
  const step = stepAt(now) + delta;
  const claimed = await failClosed('the database', () =>
    deps.db
      .update(totpCredentials)
      .set({ lastStep: step })
      .where(and(eq(totpCredentials.userId, userId), sql`${totpCredentials.lastStep} < ${step}`))
      .returning({ userId: totpCredentials.userId }),
  );
  if (claimed.length === 0) throw codeProblem('That code was already used. Wait for the next one.', 'code_reused');
  return true;
}

/** Fresh recovery codes: returns them (shown once) and the statements that replace the old ones. */
async function newRecoveryCodes(deps: Deps, userId: string, now: number) {
  const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () => {
    const bytes = crypto.getRandomValues(new Uint8Array(10));
    const chars = [...bytes].map((b) => RECOVERY_ALPHABET[b & 31]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5)}`;
  });
  const hashes = await Promise.all(codes.map((c) => sha256(`recovery:${normaliseRecoveryCode(c)}`)));
  const statements = [
    deps.db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId)),
    deps.db.insert(recoveryCodes).values(hashes.map((codeHash) => ({ userId, codeHash, usedAt: null, createdAt: now }))),
  ] as const;
  return { codes, statements };
}

const normaliseRecoveryCode = (code: string) => code.toUpperCase().replace(/[\s-]/g, '').replace(/O/g, '0').replace(/[IL]/g, '1');

/** Confirms enrolment with the first code; returns the ten recovery codes (shown once). */
export async function confirmTotpEnrollment(deps: Deps, userId: string, code: string, meta: RequestMeta): Promise<string[]> {
  if (!/^\d{6}$/.test(code)) throw codeProblem('Enter the 6-digit code from your authenticator app.');
  if (!(await claimTotpStep(deps, userId, code, false)))
    throw codeProblem('That code is not right. Check the time on your phone and try again.');
  const now = deps.now();
  const { codes, statements } = await newRecoveryCodes(deps, userId, now);
  await failClosed('the database', () =>
    deps.db.batch([
      deps.db.update(totpCredentials).set({ confirmedAt: now }).where(eq(totpCredentials.userId, userId)),
      ...statements,
      auditInsert(deps.db, { type: 'mfa_enrolled', userId, meta, detail: { method: 'totp' }, at: now }),
    ]),
  );
  return codes;
}

/** Replaces the recovery codes; the old ones stop working. */
export async function regenerateRecoveryCodes(deps: Deps, userId: string, meta: RequestMeta): Promise<string[]> {
  const now = deps.now();
  const { codes, statements } = await newRecoveryCodes(deps, userId, now);
  await failClosed('the database', () =>
    deps.db.batch([...statements, auditInsert(deps.db, { type: 'recovery_codes_regenerated', userId, meta, at: now })]),
  );
  return codes;
}

/** Removes the authenticator app and the recovery codes (the caller has checked the sign-in is recent). */
export async function disableTotp(
  deps: Deps,
  userId: string,
  meta: RequestMeta,
  by: Omit<ChangeBy, 'meta'> = { actor: null },
): Promise<void> {
  await failClosed('the database', () =>
    runStatements(deps.db, secondFactorResetStatements(deps.db, userId, { passkeys: false }, { ...by, meta }, deps.now())),
  );
}

export interface SecondFactors {
  totp: boolean;
  recoveryCodesLeft: number;
  passkeys: number;
}

/** The query that counts a user's second factors (one row, none for an unknown user), to run alone or in a batch. */
export function secondFactorsQuery(db: Database, userId: string) {
  return db
    .select({
      // Written out with aliases: Drizzle leaves a column in a select field unqualified, and an
      // unqualified "id" in a subquery would be the subquery's own table's.
      totp: sql<number>`(SELECT count(*) FROM totp_credentials t WHERE t.user_id = ${userId} AND t.confirmed_at IS NOT NULL)`,
      codes: sql<number>`(SELECT count(*) FROM recovery_codes r WHERE r.user_id = ${userId} AND r.used_at IS NULL)`,
      passkeys: sql<number>`(SELECT count(*) FROM passkeys p WHERE p.user_id = ${userId})`,
    })
    .from(users)
    .where(eq(users.id, userId));
}

/** Which second factors a row of secondFactorsQuery shows. */
export const secondFactorsFrom = (row: { totp: number; codes: number; passkeys: number } | undefined): SecondFactors => ({
  totp: (row?.totp ?? 0) > 0,
  recoveryCodesLeft: row?.codes ?? 0,
  passkeys: row?.passkeys ?? 0,
});

/** Which second factors a user has. */
export async function secondFactorsOf(deps: Deps, userId: string): Promise<SecondFactors> {
  return secondFactorsFrom(await failClosed('the database', () => secondFactorsQuery(deps.db, userId).get()));
}

export const hasSecondFactor = (f: SecondFactors) => f.totp || f.passkeys > 0;

/**
 * Verifies a second-factor code: six digits are a TOTP code, anything else a recovery code (each
 * usable once: the UPDATE that marks it used is the check). Returns which kind it was; throws a
 * 400 naming the problem otherwise. The caller limits attempts.
 */
export async function verifySecondFactorCode(deps: Deps, userId: string, input: string): Promise<'totp' | 'recovery_code'> {
  const code = input.trim();
  if (/^\d{3}\s?\d{3}$/.test(code)) {
    if (await claimTotpStep(deps, userId, code.replace(/\s/g, ''), true)) return 'totp';
    throw codeProblem('That code is not right.');
  }
  const normalised = normaliseRecoveryCode(code);
  if (!/^[0-9A-Z]{10}$/.test(normalised)) throw codeProblem('Enter the 6-digit code from your app, or a recovery code.');
  const hash = await sha256(`recovery:${normalised}`);
  const used = await failClosed('the database', () =>
    deps.db
      .update(recoveryCodes)
      .set({ usedAt: deps.now() })
      .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, hash), isNull(recoveryCodes.usedAt)))
      .returning({ userId: recoveryCodes.userId }),
  );
  if (used.length === 0) throw codeProblem('That recovery code is not right, or it was already used.');
  return 'recovery_code';
}
