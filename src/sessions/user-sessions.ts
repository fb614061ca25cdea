import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../config';
import { sha256, timingSafeEqualString } from '../lib/crypto';
import { AccountState } from './account-state';
import { BrowserSessions, newSessionSecret, type CreateSessionInput, type SessionRecord } from './browser-sessions';
import {
  BLOCKED,
  GrantStore,
  MAX_ACCESS_TOKEN_MS,
  type CodeInput,
  type CodeRedemption,
  type Grant,
  type RefreshPolicy,
  type RefreshRotation,
} from './grants';
import { HeldRequests, type HeldRequest } from './held-requests';
import { grantKey, Revocations, tokenKey } from './revocations';
import { Tickets } from './tickets';

export type { CreateSessionInput, SessionRecord };

/** An app host's session, made by redeeming a host handshake code (gateway/app-session.ts). */
export type ConnectRedemption =
  | { status: 'ok'; session: SessionRecord & { secret: string }; returnTo: string }
  | { status: 'invalid'; reason: string };

/**
 * One object per user (named by the user id): that user's browser sessions (and the app-host
 * sessions made from them), authorization codes, refresh-token families, opaque access tokens,
 * revocations, held requests and single-use tickets. (A client's own opaque tokens, from
 * client_credentials, live in an object of this class named `client:<client_id>`.) Calls are
 * serialised by the object's input gate, so a refresh never races a revoke and a code is redeemed
 * once — provided no method awaits anything but storage between its read and its write: every
 * hash is computed first. An alarm purges what has expired.
 *
 * Every sign-in, refresh and token of the user passes through here, so this is where a blocked
 * (or deleted) account stops (account-state.ts): the refresh grant, for one, reads no D1 at all.
 */
export class UserSessions extends DurableObject<Env> {
  private sessions!: BrowserSessions;
  private revocations!: Revocations;
  private grants!: GrantStore;
  private held!: HeldRequests;
  private tickets!: Tickets;
  private account!: AccountState;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.open();
  }

  /** The tables (created when missing: a new object, or one just wiped). */
  private open(): void {
    const sql = this.ctx.storage.sql;
    this.sessions = new BrowserSessions(sql);
    this.revocations = new Revocations(sql);
    this.grants = new GrantStore(sql, this.revocations);
    this.held = new HeldRequests(sql);
    this.tickets = new Tickets(sql);
    this.account = new AccountState(sql);
  }

  // ── The account's state: blocked, deleted ───────────────────────────────────────────────
  /**
   * Blocks the account: every session, app-host session, code, refresh family, opaque token,
   * ticket and held request ends now, access tokens already out stop being live, and nothing new
   * is made until `unblock`. Idempotent. Returns how many Gatehouse sessions ended.
   */
  async block(now: number): Promise<{ sessions: number }> {
    this.account.block(now);
    const sessions = this.sessions.revokeAll().count;
    this.grants.revokeEverything(now);
    this.tickets.clear();
    this.held.clear();
    await this.scheduleAlarm();
    return { sessions };
  }

  unblock(): void {
    this.account.unblock();
  }

  isBlocked(): boolean {
    return this.account.blocked;
  }

  /**
   * The account was deleted: blocked at once (a sign-in that read the account just before cannot
   * start a session here), and the storage wiped once every access token it could answer for has
   * expired (the alarm). Idempotent.
   */
  async forget(now: number): Promise<{ sessions: number }> {
    const ended = await this.block(now);
    if (this.account.forgetTime === null) this.account.forgetAt(now + MAX_ACCESS_TOKEN_MS);
    await this.scheduleAlarm();
    return ended;
  }

  // ── Browser sessions ─────────────────────────────────────────────────────────────────────
  /** Starts a session; returns it with its secret (the only time the secret is seen), or null while the account is blocked. */
  async create(input: CreateSessionInput): Promise<(SessionRecord & { secret: string }) | null> {
    const secret = await newSessionSecret();
    if (this.account.blocked) return null;
    const created = this.sessions.create(input, secret);
    await this.scheduleAlarm();
    return created;
  }

  /** Proves possession of the session secret and slides the idle timeout; null when not live or not matching. */
  async refresh(sid: string, secret: string, now: number): Promise<SessionRecord | null> {
    const hash = await sha256(secret);
    return this.sessions.refresh(sid, hash, now);
  }

  get(sid: string, now: number): SessionRecord | null {
    return this.sessions.get(sid, now);
  }

  list(now: number): SessionRecord[] {
    return this.sessions.list(now);
  }

  /**
   * Ends one session, the app-host sessions made from it, their tickets, and the refresh tokens
   * born of it (unless granted offline_access). Returns whether it existed.
   */
  revoke(sid: string): boolean {
    const now = Date.now();
    const ended = this.sessions.revoke(sid);
    for (const s of ended) this.grants.revokeFamiliesOfSession(s, now);
    this.tickets.dropOfSessions(ended);
    return ended.includes(sid);
  }

  /** Signing out from an app host: ends the Gatehouse session that host's session was made from (and with it every app host's). */
  signOutFrom(sid: string, now: number): boolean {
    const session = this.sessions.get(sid, now);
    return session ? this.revoke(session.parentSid ?? sid) : false;
  }

  /**
   * Ends every session, or every one but `exceptSid`. Ending them all also revokes every refresh
   * token ("sign out everywhere", password reset); ending all but one revokes the refresh tokens
   * born of those that ended, as signing each out would (password change). Returns how many
   * sessions ended.
   */
  revokeAll(exceptSid?: string): number {
    const now = Date.now();
    if (!exceptSid) this.grants.revokeFamiliesOfSession(null, now);
    const { ended, count } = this.sessions.revokeAll(exceptSid);
    if (exceptSid) for (const sid of ended) this.grants.revokeFamiliesOfSession(sid, now);
    this.tickets.dropOfSessions(ended);
    return count;
  }

  /**
   * Takes back everything one client holds for this user (its consent is being withdrawn): every
   * refresh family (offline_access or not), the codes not yet redeemed, and — through the
   * revocation list — the access tokens issued under them. Returns how many families were live.
   */
  async revokeClient(clientId: string): Promise<number> {
    const revoked = this.grants.revokeClient(clientId, Date.now());
    await this.scheduleAlarm();
    return revoked;
  }

  /** The clients holding a live refresh family for this user, each with its newest grant's time and scope. */
  clientsWithGrants(now: number): { clientId: string; familyCount: number; lastAuthTime: number; scope: string[] }[] {
    return this.grants.clientsWithGrants(now);
  }

  // ── Host handshake (app hosts get sessions of their own) ─────────────────────────────────
  /** A single-use code (its hash given) letting `host` get a session tied to `sid`. */
  issueConnect(hash: string, c: { sid: string; host: string; stateHash: string; returnTo: string; now: number; ttlMs: number }): boolean {
    if (this.account.blocked || !this.sessions.get(c.sid, c.now)) return false;
    this.tickets.put('connect', hash, {
      sid: c.sid,
      payload: { host: c.host, stateHash: c.stateHash, returnTo: c.returnTo },
      expiresAt: c.now + c.ttlMs,
    });
    return true;
  }

  /**
   * Redeems a handshake code at its app host: the browser's state must match, the parent session
   * must still be live, and the new session inherits its sign-in (amr, auth_time) and ends with it.
   */
  async redeemConnect(r: {
    secret: string;
    host: string;
    state: string;
    now: number;
    idleTtl: number;
    absoluteTtl: number;
    ip: string | null;
    userAgent: string | null;
  }): Promise<ConnectRedemption> {
    const [hash, stateHash, secret] = await Promise.all([sha256(r.secret), sha256(r.state), newSessionSecret()]);
    if (this.account.blocked) return { status: 'invalid', reason: BLOCKED };
    const ticket = this.tickets.take('connect', hash, r.now);
    if (!ticket) return { status: 'invalid', reason: 'unknown, used or expired code' };
    const p = ticket.payload as { host: string; stateHash: string; returnTo: string };
    if (p.host !== r.host) return { status: 'invalid', reason: 'the code is for another host' };
    if (!timingSafeEqualString(p.stateHash, stateHash)) return { status: 'invalid', reason: 'the code was not asked for by this browser' };
    const parent = this.sessions.get(ticket.sid, r.now);
    if (!parent) return { status: 'invalid', reason: 'the session has ended' };
    const session = this.sessions.create(
      {
        userId: parent.userId,
        amr: parent.amr,
        authTime: parent.authTime,
        relayed: parent.relayed,
        host: r.host,
        parentSid: parent.sid,
        ip: r.ip,
        userAgent: r.userAgent,
        now: r.now,
        idleTtl: r.idleTtl,
        absoluteTtl: r.absoluteTtl,
        notAfter: parent.absoluteExpiresAt,
      },
      secret,
    );
    await this.scheduleAlarm();
    return { status: 'ok', session, returnTo: p.returnTo };
  }

  // ── Authorization requests waiting for a consent decision ────────────────────────────────
  async holdAuthorization(hash: string, a: { sid: string; params: Record<string, string>; expiresAt: number }): Promise<void> {
    this.tickets.put('authorize', hash, { sid: a.sid, payload: a.params, expiresAt: a.expiresAt });
    await this.scheduleAlarm();
  }

  takeAuthorization(hash: string, now: number): { sid: string; params: Record<string, string> } | null {
    const ticket = this.tickets.take('authorize', hash, now);
    return ticket ? { sid: ticket.sid, params: ticket.payload as Record<string, string> } : null;
  }

  // ── Codes, refresh families, revocation ─────────────────────────────────────────────────
  /** A new authorization code's secret, or null while the account is blocked. */
  async issueCode(input: CodeInput): Promise<string | null> {
    const secret = await this.grants.issueCode(input, () => !this.account.blocked);
    await this.scheduleAlarm();
    return secret;
  }

  async redeemCode(input: Parameters<GrantStore['redeemCode']>[0]): Promise<CodeRedemption> {
    const result = await this.grants.redeemCode(input, () => !this.account.blocked);
    await this.scheduleAlarm();
    return result;
  }

  /** Starts a refresh-token family outside the code flow; null while the account is blocked. */
  async createRefreshFamily(grant: Grant, policy: RefreshPolicy, now: number): Promise<{ familyId: string; secret: string } | null> {
    const family = await this.grants.createFamily(grant, policy, now, () => !this.account.blocked);
    await this.scheduleAlarm();
    return family;
  }

  rotateRefresh(input: Parameters<GrantStore['rotateRefresh']>[0]): Promise<RefreshRotation> {
    return this.grants.rotateRefresh(input, () => !this.account.blocked);
  }

  async inspectRefresh(familyId: string, secret: string, now: number) {
    const grant = await this.grants.inspectRefresh(familyId, secret, now);
    return this.account.blocked ? null : grant;
  }

  async revokeRefreshFamily(familyId: string): Promise<boolean> {
    const revoked = this.grants.revokeFamily(familyId, Date.now());
    await this.scheduleAlarm();
    return revoked;
  }

  /** RFC 7009 for a signed access token: refused wherever liveness is checked, until it expires. */
  async revokeAccessToken(jti: string, expiresAt: number): Promise<void> {
    this.revocations.add(tokenKey(jti), Math.min(expiresAt, Date.now() + MAX_ACCESS_TOKEN_MS));
    await this.scheduleAlarm();
  }

  /**
   * Whether a signed access token is live: its grant (`gid`) and the token itself (`jti`) are
   * unrevoked, the account is not blocked, and the token (`iat`, seconds) is younger than the last block.
   */
  isTokenLive(t: { grantId: string | null; jti: string | null; issuedAt?: number | null }): boolean {
    if (this.account.blocked || this.account.issuedBeforeBlock(t.issuedAt ?? null)) return false;
    const keys = [...(t.grantId ? [grantKey(t.grantId)] : []), ...(t.jti ? [tokenKey(t.jti)] : [])];
    return !this.revocations.has(keys);
  }

  // ── Opaque access tokens ─────────────────────────────────────────────────────────────────
  /** Keeps the JWT behind a new opaque token; returns the token's secret, or null while the account is blocked. */
  async storeOpaque(jwt: string, expiresAt: number, grantId: string | null): Promise<string | null> {
    const secret = await this.grants.opaque.store(jwt, expiresAt, grantId, () => !this.account.blocked);
    await this.scheduleAlarm();
    return secret;
  }

  async resolveOpaque(secret: string, now: number): Promise<string | null> {
    const jwt = await this.grants.opaque.resolve(secret, now);
    return this.account.blocked ? null : jwt;
  }

  revokeOpaque(secret: string): Promise<boolean> {
    return this.grants.opaque.revoke(secret);
  }

  // ── Requests held during step-up ─────────────────────────────────────────────────────────
  async holdRequest(request: HeldRequest): Promise<string> {
    const id = this.held.hold(request);
    await this.scheduleAlarm();
    return id;
  }

  peekHeldRequest(id: string, now: number): Omit<HeldRequest, 'body'> | null {
    return this.held.peek(id, now);
  }

  takeHeldRequest(id: string, now: number): HeldRequest | null {
    return this.held.take(id, now);
  }

  /** Purges what has expired and re-arms for the next expiry; wipes a deleted account's object when its time comes. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const forget = this.account.forgetTime;
    if (forget !== null && now >= forget) {
      await this.ctx.storage.deleteAlarm();
      await this.ctx.storage.deleteAll();
      this.open();
      return;
    }
    this.sessions.purge(now);
    this.grants.purge(now);
    this.held.purge(now);
    this.tickets.purge(now);
    this.revocations.purge(now);
    await this.scheduleAlarm();
  }

  private async scheduleAlarm(): Promise<void> {
    const next = [
      this.sessions.nextExpiry(),
      this.grants.nextExpiry(),
      this.held.nextExpiry(),
      this.tickets.nextExpiry(),
      this.revocations.nextExpiry(),
      this.account.forgetTime,
    ].reduce<number | null>((a, b) => (a === null ? b : b === null ? a : Math.min(a, b)), null);
    if (next === null) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }
}
