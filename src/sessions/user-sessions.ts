import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../config';
import { randomToken, sha256, timingSafeEqualString } from '../lib/crypto';
import { HeldRequests, type HeldRequest } from './held-requests';
import { GrantStore, type CodeInput, type CodeRedemption, type Grant, type RefreshPolicy, type RefreshRotation } from './grants';

/** A browser session as the owner sees it. The secret never leaves the object after creation. */
export interface SessionRecord {
  /** Public id (128 bits): shown on the account page, carried in the session token as `sid`. */
  sid: string;
  userId: string;
  amr: string[];
  createdAt: number;
  lastSeenAt: number;
  idleExpiresAt: number;
  absoluteExpiresAt: number;
  ip: string | null;
  userAgent: string | null;
}

export interface CreateSessionInput {
  userId: string;
  amr: string[];
  ip: string | null;
  userAgent: string | null;
  now: number;
  /** Seconds. */
  idleTtl: number;
  absoluteTtl: number;
}

interface Row extends Record<string, SqlStorageValue> {
  sid: string;
  user_id: string;
  secret_hash: string;
  amr: string;
  created_at: number;
  last_seen_at: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  ip: string | null;
  user_agent: string | null;
  idle_ttl: number;
}

const toRecord = (r: Row): SessionRecord => ({
  sid: r.sid,
  userId: r.user_id,
  amr: JSON.parse(r.amr) as string[],
  createdAt: r.created_at,
  lastSeenAt: r.last_seen_at,
  idleExpiresAt: r.idle_expires_at,
  absoluteExpiresAt: r.absolute_expires_at,
  ip: r.ip,
  userAgent: r.user_agent,
});

/**
 * One object per user (named by the user id): that user's browser sessions, authorization codes,
 * refresh-token families and opaque access tokens. (A client's own opaque tokens, from
 * client_credentials, live in an object of this class named `client:<client_id>`.) Calls are serialised by the object's input gate, so a refresh never races
 * a revoke and a code is redeemed once. Only SHA-256 hashes of secrets are stored. An alarm purges
 * what has expired.
 */
export class UserSessions extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly grants: GrantStore;
  private readonly held: HeldRequests;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.grants = new GrantStore(this.sql);
    this.held = new HeldRequests(this.sql);
    this.sql.exec(`CREATE TABLE IF NOT EXISTS sessions (
      sid TEXT PRIMARY KEY,
      user_id TEXT NOT NULL,
      secret_hash TEXT NOT NULL UNIQUE,
      amr TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      last_seen_at INTEGER NOT NULL,
      idle_expires_at INTEGER NOT NULL,
      absolute_expires_at INTEGER NOT NULL,
      idle_ttl INTEGER NOT NULL,
      ip TEXT,
      user_agent TEXT
    )`);
  }

  /** Starts a session; returns it with its secret (the only time the secret is seen). */
  async create(input: CreateSessionInput): Promise<SessionRecord & { secret: string }> {
    const sid = randomToken(16);
    const secret = randomToken(32);
    const secretHash = await sha256(secret);
    const absoluteExpiresAt = input.now + input.absoluteTtl * 1000;
    const idleExpiresAt = Math.min(input.now + input.idleTtl * 1000, absoluteExpiresAt);
    this.sql.exec(
      `INSERT INTO sessions (sid, user_id, secret_hash, amr, created_at, last_seen_at, idle_expires_at, absolute_expires_at, idle_ttl, ip, user_agent)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      sid,
      input.userId,
      secretHash,
      JSON.stringify(input.amr),
      input.now,
      input.now,
      idleExpiresAt,
      absoluteExpiresAt,
      input.idleTtl * 1000,
      input.ip?.slice(0, 64) ?? null,
      input.userAgent?.slice(0, 256) ?? null,
    );
    await this.scheduleAlarm();
    return { ...toRecord(this.row(sid)!), secret };
  }

  /**
   * Proves possession of the session secret and slides the idle timeout. Returns null when the
   * session is unknown, revoked, expired, or the secret does not match.
   */
  async refresh(sid: string, secret: string, now: number): Promise<SessionRecord | null> {
    // Hash before reading: other calls may run during an await that is not a storage call.
    const hash = await sha256(secret);
    const row = this.row(sid);
    if (!row || !timingSafeEqualString(row.secret_hash, hash)) return null;
    if (now >= row.idle_expires_at || now >= row.absolute_expires_at) {
      this.sql.exec('DELETE FROM sessions WHERE sid = ?', sid);
      return null;
    }
    const idleExpiresAt = Math.min(now + row.idle_ttl, row.absolute_expires_at);
    this.sql.exec('UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE sid = ?', now, idleExpiresAt, sid);
    return toRecord(this.row(sid)!);
  }

  /** The live session with this id, or null. */
  get(sid: string, now: number): SessionRecord | null {
    const row = this.row(sid);
    return row && now < row.idle_expires_at && now < row.absolute_expires_at ? toRecord(row) : null;
  }

  /** Live sessions, newest first. */
  list(now: number): SessionRecord[] {
    return this.sql
      .exec<Row>(
        'SELECT * FROM sessions WHERE idle_expires_at > ? AND absolute_expires_at > ? ORDER BY created_at DESC',
        now,
        now,
      )
      .toArray()
      .map(toRecord);
  }

  /** Ends one session and the refresh tokens born of it (unless granted offline_access). Returns whether it existed. */
  revoke(sid: string): boolean {
    this.grants.revokeFamiliesOfSession(sid, Date.now());
    return this.sql.exec('DELETE FROM sessions WHERE sid = ? RETURNING sid', sid).toArray().length > 0;
  }

  /**
   * Ends every session, or every one but `exceptSid`. Ending them all also revokes every refresh
   * token ("sign out everywhere", password reset). Returns how many sessions ended.
   */
  revokeAll(exceptSid?: string): number {
    if (!exceptSid) this.grants.revokeFamiliesOfSession(null, Date.now());
    const cursor = exceptSid
      ? this.sql.exec('DELETE FROM sessions WHERE sid != ? RETURNING sid', exceptSid)
      : this.sql.exec('DELETE FROM sessions RETURNING sid');
    return cursor.toArray().length;
  }

  /** Stores an authorization code; returns its secret. */
  async issueCode(input: CodeInput): Promise<string> {
    const secret = await this.grants.issueCode(input);
    await this.scheduleAlarm();
    return secret;
  }

  async redeemCode(input: Parameters<GrantStore['redeemCode']>[0]): Promise<CodeRedemption> {
    const result = await this.grants.redeemCode(input);
    if (result.status === 'ok') await this.scheduleAlarm();
    return result;
  }

  /** Starts a refresh-token family outside the code flow. */
  async createRefreshFamily(grant: Grant, policy: RefreshPolicy, now: number): Promise<{ familyId: string; secret: string }> {
    const family = await this.grants.createFamily(grant, policy, now);
    await this.scheduleAlarm();
    return family;
  }

  rotateRefresh(input: Parameters<GrantStore['rotateRefresh']>[0]): Promise<RefreshRotation> {
    return this.grants.rotateRefresh(input);
  }

  inspectRefresh(familyId: string, secret: string, now: number) {
    return this.grants.inspectRefresh(familyId, secret, now);
  }

  revokeRefreshFamily(familyId: string): boolean {
    return this.grants.revokeFamily(familyId, Date.now());
  }

  async storeOpaque(jwt: string, expiresAt: number, grantId: string | null): Promise<string> {
    const secret = await this.grants.opaque.store(jwt, expiresAt, grantId);
    await this.scheduleAlarm();
    return secret;
  }

  resolveOpaque(secret: string, now: number): Promise<string | null> {
    return this.grants.opaque.resolve(secret, now);
  }

  revokeOpaque(secret: string): Promise<boolean> {
    return this.grants.opaque.revoke(secret);
  }

  /** Holds a request during step-up (the gateway replays it once). */
  async holdRequest(request: HeldRequest): Promise<string> {
    const id = this.held.hold(request);
    await this.scheduleAlarm();
    return id;
  }

  takeHeldRequest(id: string, now: number): HeldRequest | null {
    return this.held.take(id, now);
  }

  /** Purges expired sessions, codes and refresh families, and re-arms for the next expiry. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    this.sql.exec('DELETE FROM sessions WHERE idle_expires_at <= ? OR absolute_expires_at <= ?', now, now);
    this.grants.purge(now);
    this.held.purge(now);
    await this.scheduleAlarm();
  }

  private row(sid: string): Row | undefined {
    return this.sql.exec<Row>('SELECT * FROM sessions WHERE sid = ?', sid).toArray()[0];
  }

  private async scheduleAlarm(): Promise<void> {
    const sessions = this.sql
      .exec<{ next: number | null }>('SELECT MIN(MIN(idle_expires_at, absolute_expires_at)) AS next FROM sessions')
      .one().next;
    const next = [sessions, this.grants.nextExpiry(), this.held.nextExpiry()].reduce<number | null>(
      (a, b) => (a === null ? b : b === null ? a : Math.min(a, b)),
      null,
    );
    if (next === null) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }
}
