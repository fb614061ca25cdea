import { and, eq } from 'drizzle-orm';
import type { D1Queries, Database } from '../db/client';
import { emailTokens } from '../db/schema';
import { randomToken, sha256 } from '../lib/crypto';
import { GatehouseError } from '../lib/errors';

export type TokenPurpose = 'verify_email' | 'reset_password';

/** Lifetimes in seconds; both at most 30 minutes. */
export const EMAIL_TOKEN_TTL: Record<TokenPurpose, number> = { verify_email: 30 * 60, reset_password: 30 * 60 };

export interface EmailTokenRow {
  userId: string | null;
  email: string;
  passwordHash: string | null;
  expiresAt: number;
}

interface NewEmailToken {
  purpose: TokenPurpose;
  email: string;
  userId: string | null;
  passwordHash?: string | null;
  upstreamIdentity?: string | null;
  profileAttributes?: string | null;
  now: number;
  /** Seconds; EMAIL_TOKEN_TTL[purpose] unless given (an invitation lives longer than a reset). */
  ttl?: number;
}

/** A fresh 256-bit token (to be mailed, never stored) and the insert of its hash, to batch with the change it belongs to. */
export async function emailTokenStatement(db: Database, t: NewEmailToken) {
  const token = randomToken(32);
  const statement = db.insert(emailTokens).values({
    tokenHash: await sha256(token),
    purpose: t.purpose,
    userId: t.userId,
    email: t.email,
    passwordHash: t.passwordHash ?? null,
    upstreamIdentity: t.upstreamIdentity ?? null,
    profileAttributes: t.profileAttributes ?? null,
    expiresAt: t.now + (t.ttl ?? EMAIL_TOKEN_TTL[t.purpose]) * 1000,
    createdAt: t.now,
  });
  return { token, statement };
}

/** Stores the hash of a fresh 256-bit token and returns the token (to be mailed, never stored). */
export async function issueEmailToken(db: Database, t: NewEmailToken): Promise<string> {
  const { token, statement } = await emailTokenStatement(db, t);
  await statement;
  return token;
}

const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

const invalid = (purpose: TokenPurpose) =>
  new GatehouseError(
    'invalid_link',
    purpose === 'verify_email'
      ? 'This verification link is invalid or has already been used.'
      : 'This reset link is invalid or has already been used.',
    { field: 'token' },
  );
const expired = (purpose: TokenPurpose) =>
  new GatehouseError(
    'expired_token',
    purpose === 'verify_email'
      ? 'This verification link has expired; sign up again to get a new one.'
      : 'This reset link has expired; request a new one.',
    { field: 'token' },
  );

/** Looks a token up without consuming it; throws a clear 400 when it is malformed, unknown, used or expired. */
export async function peekEmailToken(
  db: Database,
  purpose: TokenPurpose,
  token: string,
  now: number,
): Promise<EmailTokenRow & { tokenHash: string }> {
  if (!TOKEN_SHAPE.test(token)) throw invalid(purpose);
  const tokenHash = await sha256(token);
  const row = await db
    .select()
    .from(emailTokens)
    .where(and(eq(emailTokens.tokenHash, tokenHash), eq(emailTokens.purpose, purpose)))
    .get();
  if (!row) throw invalid(purpose);
  if (row.expiresAt <= now) {
    await db.delete(emailTokens).where(eq(emailTokens.tokenHash, tokenHash));
    throw expired(purpose);
  }
  return { tokenHash, userId: row.userId, email: row.email, passwordHash: row.passwordHash, expiresAt: row.expiresAt };
}

/**
 * The condition every effect of a consumption must carry: parameters ?1 (token hash), ?2 (purpose)
 * and ?3 (now) are bound by consumeEmailToken, effect-specific ones start at ?4.
 */
export const TOKEN_IS_LIVE = 'token_hash = ?1 AND purpose = ?2 AND expires_at > ?3';

/**
 * Consumes a token and applies its effects in one D1 transaction. Each effect is guarded by
 * TOKEN_IS_LIVE and the token is deleted last, so of two concurrent consumptions exactly one sees
 * the row: the other's effects match nothing and it gets a 400. Nothing is half-written.
 */
export async function consumeEmailToken(
  d1: D1Queries,
  c: { purpose: TokenPurpose; tokenHash: string; now: number; effects: { sql: string; params?: unknown[] }[] },
): Promise<EmailTokenRow> {
  const bind = (sql: string, extra: unknown[] = []) => d1.prepare(sql).bind(c.tokenHash, c.purpose, c.now, ...extra);
  const results = await d1.batch([
    ...c.effects.map((e) => bind(e.sql, e.params)),
    // ?3 is bound for every statement; the delete ignores it.
    bind('DELETE FROM email_tokens WHERE token_hash = ?1 AND purpose = ?2 AND ?3 = ?3 RETURNING user_id, email, password_hash, expires_at'),
  ]);
  const row = results.at(-1)?.results[0] as
    | { user_id: string | null; email: string; password_hash: string | null; expires_at: number }
    | undefined;
  if (!row) throw invalid(c.purpose);
  if (row.expires_at <= c.now) throw expired(c.purpose);
  return { userId: row.user_id, email: row.email, passwordHash: row.password_hash, expiresAt: row.expires_at };
}
