import { randomToken, sha256, timingSafeEqualString } from '../lib/crypto';
import { CODE_VERIFIER, s256 } from '../lib/pkce';
import { addMissingColumns } from './browser-sessions';
import { OpaqueTokens } from './opaque-tokens';
import { grantKey, type Revocations } from './revocations';

/**
 * Whether the account may get anything new, asked after the method's last await and before its
 * first write (a block cannot slip in between); refusals give `BLOCKED` as their reason.
 */
export type MayIssue = () => boolean;
const always: MayIssue = () => true;
/** The reason a refused grant gives while the account is blocked. */
export const BLOCKED = 'the account is blocked';

/** What an authorization code or a refresh-token family stands for. */
export interface Grant {
  clientId: string;
  scope: string[];
  /** The browser session it came from. */
  sid: string;
  /** Seconds since epoch. */
  authTime: number;
  amr: string[];
  acr: string | null;
  /** RFC 8707: the resources (audiences) the grant may be used for, as granted (authorize.ts grantResources); empty: Gatehouse itself only. */
  resources: string[];
  /** OIDC `claims` request: claim names for userinfo and for the ID token (null: none asked). */
  claims: { userinfo: string[]; idToken: string[] } | null;
  /**
   * RFC 9449: the DPoP key (thumbprint) it is bound to — a code by the request's `dpop_jkt` (§10), a
   * refresh family of a public client by the proof it was issued with (§5) — or null.
   */
  dpopJkt: string | null;
}

/** Longest an access token can live (ACCESS_TOKEN_TTL and per-client lifetimes are capped at a day). */
export const MAX_ACCESS_TOKEN_MS = 86_400_000;

export interface CodeInput extends Grant {
  redirectUri: string;
  /** Null for a client allowed to use `nonce` instead of PKCE (docs/oidc.md). */
  codeChallenge: string | null;
  nonce: string | null;
  now: number;
  ttlMs: number;
}

export interface RefreshPolicy {
  /** Milliseconds. */
  idleTtlMs: number;
  absoluteTtlMs: number;
}

export type CodeRedemption =
  /** `grantId` names the grant in the tokens it issues (`gid`): the refresh family's id, or a fresh one. */
  | { status: 'ok'; grant: Grant & { nonce: string | null }; grantId: string; refresh?: { familyId: string; secret: string } }
  | { status: 'invalid'; reason: string }
  /** RFC 8707: the resource asked for was not part of the authorization; nothing was consumed. */
  | { status: 'invalid_target' }
  /** The code was already redeemed: the refresh family issued from it has been revoked. */
  | { status: 'reused' };

export type RefreshRotation =
  | { status: 'ok'; grant: Grant; secret: string }
  | { status: 'invalid'; reason: string }
  /** A wider scope than the family's was asked for; nothing was rotated. */
  | { status: 'invalid_scope' }
  /** A resource outside the family's authorization was asked for; nothing was rotated. */
  | { status: 'invalid_target' }
  /** A rotated-out token was presented again: the whole family is now revoked. */
  | { status: 'reused' };

async function newFamilySecret(): Promise<{ familyId: string; secret: string; hash: string }> {
  const secret = randomToken(32);
  return { familyId: randomToken(16), secret, hash: await sha256(secret) };
}

/** RFC 8707: a grant is exchanged only for tokens for its own resources (or Gatehouse itself). */
const allows = (grant: Grant, resource: string | null | undefined) => !resource || grant.resources.includes(resource);

/** Consumed codes are kept this long past expiry, so a replay is recognised (and punished) as one. */
const CODE_REPLAY_WINDOW_MS = 10 * 60_000;

interface CodeRow extends Record<string, SqlStorageValue> {
  code_hash: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  scope: string;
  nonce: string | null;
  sid: string;
  auth_time: number;
  amr: string;
  acr: string | null;
  expires_at: number;
  consumed_at: number | null;
  /** Once redeemed: the grant the code became (the refresh family's id, or a fresh id). */
  family_id: string | null;
  resources: string | null;
  claims: string | null;
  dpop_jkt: string | null;
}

interface FamilyRow extends Record<string, SqlStorageValue> {
  family_id: string;
  client_id: string;
  scope: string;
  sid: string;
  auth_time: number;
  amr: string;
  acr: string | null;
  current_hash: string;
  idle_ttl: number;
  idle_expires_at: number;
  absolute_expires_at: number;
  revoked_at: number | null;
  resources: string | null;
  claims: string | null;
  dpop_jkt: string | null;
}

const grantOf = (r: CodeRow | FamilyRow): Grant => ({
  clientId: r.client_id,
  scope: JSON.parse(r.scope) as string[],
  sid: r.sid,
  authTime: r.auth_time,
  amr: JSON.parse(r.amr) as string[],
  acr: r.acr,
  resources: r.resources ? (JSON.parse(r.resources) as string[]) : [],
  claims: r.claims ? (JSON.parse(r.claims) as Grant['claims']) : null,
  dpopJkt: r.dpop_jkt ?? null,
});

/**
 * Authorization codes and refresh-token families of one user, inside that user's UserSessions
 * object. The object's input gate serialises every call, so "check then consume" cannot race:
 * of concurrent redemptions of one code or one refresh token exactly one succeeds. Only hashes of
 * the secrets are stored.
 */
export class GrantStore {
  constructor(
    private readonly sql: SqlStorage,
    private readonly revocations: Revocations,
  ) {
    sql.exec(`CREATE TABLE IF NOT EXISTS auth_codes (
      code_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
      code_challenge TEXT NOT NULL, scope TEXT NOT NULL, nonce TEXT, sid TEXT NOT NULL,
      auth_time INTEGER NOT NULL, amr TEXT NOT NULL, acr TEXT, expires_at INTEGER NOT NULL,
      consumed_at INTEGER, family_id TEXT)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS refresh_families (
      family_id TEXT PRIMARY KEY, client_id TEXT NOT NULL, scope TEXT NOT NULL, sid TEXT NOT NULL,
      auth_time INTEGER NOT NULL, amr TEXT NOT NULL, acr TEXT, current_hash TEXT NOT NULL,
      idle_ttl INTEGER NOT NULL, idle_expires_at INTEGER NOT NULL, absolute_expires_at INTEGER NOT NULL,
      revoked_at INTEGER)`);
    sql.exec(`CREATE TABLE IF NOT EXISTS refresh_used (hash TEXT PRIMARY KEY, family_id TEXT NOT NULL)`);
    addMissingColumns(sql, 'auth_codes', { resources: 'TEXT', claims: 'TEXT', dpop_jkt: 'TEXT' });
    addMissingColumns(sql, 'refresh_families', { resources: 'TEXT', claims: 'TEXT', dpop_jkt: 'TEXT' });
    this.opaque = new OpaqueTokens(sql);
  }

  /** Opaque access tokens live beside the grants they were issued under. */
  readonly opaque: OpaqueTokens;

  /** Stores a new code (single use, short-lived) and returns its secret; null when `may` says no. */
  async issueCode(c: CodeInput, may: MayIssue = always): Promise<string | null> {
    const secret = randomToken(32);
    const hash = await sha256(secret);
    if (!may()) return null;
    this.sql.exec(
      `INSERT INTO auth_codes (code_hash, client_id, redirect_uri, code_challenge, scope, nonce, sid, auth_time, amr, acr, expires_at, resources, claims, dpop_jkt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      hash,
      c.clientId,
      c.redirectUri,
      c.codeChallenge ?? '',
      JSON.stringify(c.scope),
      c.nonce,
      c.sid,
      c.authTime,
      JSON.stringify(c.amr),
      c.acr,
      c.now + c.ttlMs,
      JSON.stringify(c.resources),
      c.claims ? JSON.stringify(c.claims) : null,
      c.dpopJkt,
    );
    return secret;
  }

  /**
   * Redeems a code for `clientId` at `redirectUri` with the PKCE verifier. Nothing is consumed unless
   * every check passes. A second redemption revokes the refresh family the first one created.
   *
   * Everything asynchronous (hashing) happens first: the object's input gate only holds other
   * requests back across storage calls, so the read-check-write below runs with no await in it.
   */
  async redeemCode(
    r: {
      secret: string;
      clientId: string;
      redirectUri: string;
      /** Required for a code issued with a challenge; refused for one issued without (a downgrade). */
      codeVerifier: string | null;
      now: number;
      refresh: RefreshPolicy | null;
      /** The resource the token request names, checked against the authorization before anything is consumed. */
      resource?: string | null;
      /** The key of the token request's DPoP proof, or null; a code bound to a key needs it. */
      dpopJkt?: string | null;
      /** Bind the refresh family to that key (public clients, RFC 9449 §5). */
      bindRefresh?: boolean;
    },
    may: MayIssue = always,
  ): Promise<CodeRedemption> {
    const hash = await sha256(r.secret);
    const answer = r.codeVerifier !== null && CODE_VERIFIER.test(r.codeVerifier) ? await s256(r.codeVerifier) : null;
    const family = r.refresh ? await newFamilySecret() : null;
    const grantId = family?.familyId ?? randomToken(16);
    if (!may()) return { status: 'invalid', reason: BLOCKED };

    const row = this.sql.exec<CodeRow>('SELECT * FROM auth_codes WHERE code_hash = ?', hash).toArray()[0];
    if (!row) return { status: 'invalid', reason: 'unknown code' };
    if (row.consumed_at !== null) {
      // RFC 6749 §4.1.2: a replayed code revokes what was issued from it (refresh family and access tokens).
      if (row.family_id) this.revokeFamily(row.family_id, r.now);
      return { status: 'reused' };
    }
    if (r.now >= row.expires_at) return { status: 'invalid', reason: 'the code has expired' };
    if (row.client_id !== r.clientId) return { status: 'invalid', reason: 'the code was issued to another client' };
    // RFC 6749 §4.1.3: redirect_uri must be identical to the one in the authorization request.
    if (row.redirect_uri !== r.redirectUri) return { status: 'invalid', reason: 'redirect_uri does not match' };
    // RFC 7636 §4.6: a code issued with a challenge needs the verifier (missing is invalid_grant too).
    if (row.code_challenge === '') {
      if (r.codeVerifier !== null) return { status: 'invalid', reason: 'the code was issued without a code_challenge' };
    } else if (r.codeVerifier === null) return { status: 'invalid', reason: 'code_verifier is required for this code' };
    else if (!answer || !timingSafeEqualString(answer, row.code_challenge))
      return { status: 'invalid', reason: 'code_verifier does not match the code_challenge' };

    // RFC 9449 §10: a code bound to a key is redeemed only with a proof by that key.
    if (row.dpop_jkt !== null && row.dpop_jkt !== (r.dpopJkt ?? null))
      return { status: 'invalid', reason: 'the code is bound to another DPoP key' };
    const grant = { ...grantOf(row), dpopJkt: r.bindRefresh ? (r.dpopJkt ?? null) : null };
    if (!allows(grant, r.resource)) return { status: 'invalid_target' };
    if (family && r.refresh) this.insertFamily(grant, family, r.refresh, r.now);
    this.sql.exec(
      'UPDATE auth_codes SET consumed_at = ?, family_id = ?, expires_at = ? WHERE code_hash = ?',
      r.now,
      grantId,
      row.expires_at + CODE_REPLAY_WINDOW_MS,
      hash,
    );
    return {
      status: 'ok',
      grant: { ...grant, nonce: row.nonce },
      grantId,
      ...(family ? { refresh: { familyId: family.familyId, secret: family.secret } } : {}),
    };
  }

  async createFamily(
    grant: Grant,
    policy: RefreshPolicy,
    now: number,
    may: MayIssue = always,
  ): Promise<{ familyId: string; secret: string } | null> {
    const family = await newFamilySecret();
    if (!may()) return null;
    this.insertFamily(grant, family, policy, now);
    return { familyId: family.familyId, secret: family.secret };
  }

  private insertFamily(grant: Grant, family: { familyId: string; hash: string }, policy: RefreshPolicy, now: number): void {
    const absolute = now + policy.absoluteTtlMs;
    this.sql.exec(
      `INSERT INTO refresh_families (family_id, client_id, scope, sid, auth_time, amr, acr, current_hash, idle_ttl, idle_expires_at, absolute_expires_at, resources, claims, dpop_jkt)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      family.familyId,
      grant.clientId,
      JSON.stringify(grant.scope),
      grant.sid,
      grant.authTime,
      JSON.stringify(grant.amr),
      grant.acr,
      family.hash,
      policy.idleTtlMs,
      Math.min(now + policy.idleTtlMs, absolute),
      absolute,
      JSON.stringify(grant.resources),
      grant.claims ? JSON.stringify(grant.claims) : null,
      grant.dpopJkt,
    );
  }

  /** Rotates a refresh token: the presented secret is retired and a new one returned. */
  async rotateRefresh(
    r: {
      familyId: string;
      secret: string;
      clientId: string;
      now: number;
      scope?: string[];
      resource?: string | null;
      /** The key of the request's DPoP proof, or null: a family bound to a key needs a proof by it. */
      dpopJkt?: string | null;
    },
    may: MayIssue = always,
  ): Promise<RefreshRotation> {
    // Hashing first; from the read on there is no await (see redeemCode).
    const hash = await sha256(r.secret);
    const secret = randomToken(32);
    const nextHash = await sha256(secret);
    if (!may()) return { status: 'invalid', reason: BLOCKED };
    const family = this.sql.exec<FamilyRow>('SELECT * FROM refresh_families WHERE family_id = ?', r.familyId).toArray()[0];
    if (!family || family.revoked_at !== null) return { status: 'invalid', reason: 'the refresh token is not active' };
    if (family.client_id !== r.clientId) return { status: 'invalid', reason: 'the refresh token was issued to another client' };
    if (!timingSafeEqualString(family.current_hash, hash)) {
      const used = this.sql.exec('SELECT 1 FROM refresh_used WHERE hash = ? AND family_id = ?', hash, r.familyId).toArray();
      if (used.length === 0) return { status: 'invalid', reason: 'the refresh token is not active' };
      this.revokeFamily(r.familyId, r.now); // RFC 9700 §4.14.2: reuse revokes the family
      return { status: 'reused' };
    }
    if (r.now >= family.idle_expires_at || r.now >= family.absolute_expires_at)
      return { status: 'invalid', reason: 'the refresh token has expired' };
    // RFC 9449 §5: a bound refresh token is used only with a proof by its key (nothing rotates otherwise).
    if (family.dpop_jkt !== null && family.dpop_jkt !== (r.dpopJkt ?? null))
      return { status: 'invalid', reason: 'the refresh token is bound to another DPoP key' };
    const grant = grantOf(family);
    // RFC 6749 §6: a narrower scope may be asked for, never a wider one — checked before rotating.
    if (r.scope?.some((s) => !grant.scope.includes(s))) return { status: 'invalid_scope' };
    if (!allows(grant, r.resource)) return { status: 'invalid_target' };
    this.sql.exec('INSERT INTO refresh_used (hash, family_id) VALUES (?, ?)', hash, r.familyId);
    this.sql.exec(
      'UPDATE refresh_families SET current_hash = ?, idle_expires_at = ? WHERE family_id = ?',
      nextHash,
      Math.min(r.now + family.idle_ttl, family.absolute_expires_at),
      r.familyId,
    );
    return { status: 'ok', grant: r.scope ? { ...grant, scope: r.scope } : grant, secret };
  }

  /** The live grant behind a refresh token, without rotating it (introspection). */
  async inspectRefresh(familyId: string, secret: string, now: number): Promise<(Grant & { expiresAt: number }) | null> {
    const hash = await sha256(secret);
    const family = this.sql.exec<FamilyRow>('SELECT * FROM refresh_families WHERE family_id = ?', familyId).toArray()[0];
    if (!family || family.revoked_at !== null || now >= family.idle_expires_at || now >= family.absolute_expires_at) return null;
    if (!timingSafeEqualString(family.current_hash, hash)) return null;
    return { ...grantOf(family), expiresAt: Math.min(family.idle_expires_at, family.absolute_expires_at) };
  }

  /**
   * Revokes a grant: its refresh family (when it has one), the opaque access tokens issued under it,
   * and — through the revocation list — every signed access token naming it.
   */
  revokeFamily(grantId: string, now: number): boolean {
    this.opaque.deleteOfGrant(grantId);
    this.revocations.add(grantKey(grantId), now + MAX_ACCESS_TOKEN_MS);
    return (
      this.sql
        .exec('UPDATE refresh_families SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL RETURNING family_id', now, grantId)
        .toArray().length > 0
    );
  }

  /** Revokes the families born of a browser session (sign-out), except those granted offline_access. */
  revokeFamiliesOfSession(sid: string | null, now: number): number {
    const rows = sid
      ? this.sql.exec(
          `UPDATE refresh_families SET revoked_at = ? WHERE sid = ? AND revoked_at IS NULL AND scope NOT LIKE '%"offline_access"%' RETURNING family_id`,
          now,
          sid,
        )
      : this.sql.exec('UPDATE refresh_families SET revoked_at = ? WHERE revoked_at IS NULL RETURNING family_id', now);
    const revoked = rows.toArray() as { family_id: string }[];
    this.revokeGrantTokens(revoked, now);
    return revoked.length;
  }

  /** The access tokens of these grants: opaque ones deleted, signed ones on the revocation list. */
  private revokeGrantTokens(grants: { family_id: string }[], now: number): void {
    for (const { family_id } of grants) {
      this.opaque.deleteOfGrant(family_id);
      this.revocations.add(grantKey(family_id), now + MAX_ACCESS_TOKEN_MS);
    }
  }

  /**
   * Revokes everything of one client: its refresh families (offline_access too), its unredeemed
   * codes (deleted: redeeming one is then an unknown code), and the grants of its redeemed codes
   * still remembered (access tokens issued without a refresh token).
   */
  revokeClient(clientId: string, now: number): number {
    const families = this.sql
      .exec<{ family_id: string }>(
        'UPDATE refresh_families SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL RETURNING family_id',
        now,
        clientId,
      )
      .toArray();
    const redeemed = this.sql
      .exec<{ family_id: string }>(
        'SELECT family_id FROM auth_codes WHERE client_id = ? AND consumed_at IS NOT NULL AND family_id IS NOT NULL',
        clientId,
      )
      .toArray();
    this.sql.exec('DELETE FROM auth_codes WHERE client_id = ? AND consumed_at IS NULL', clientId);
    this.revokeGrantTokens([...families, ...redeemed], now);
    return families.length;
  }

  /** Clients with a live refresh family: how many, the latest sign-in behind one, and the scopes across them. */
  clientsWithGrants(now: number): { clientId: string; familyCount: number; lastAuthTime: number; scope: string[] }[] {
    const rows = this.sql
      .exec<{ client_id: string; scope: string; auth_time: number }>(
        'SELECT client_id, scope, auth_time FROM refresh_families WHERE revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?',
        now,
        now,
      )
      .toArray();
    const by = new Map<string, { clientId: string; familyCount: number; lastAuthTime: number; scope: string[] }>();
    for (const r of rows) {
      const entry = by.get(r.client_id) ?? { clientId: r.client_id, familyCount: 0, lastAuthTime: 0, scope: [] };
      entry.familyCount++;
      entry.lastAuthTime = Math.max(entry.lastAuthTime, r.auth_time);
      entry.scope = [...new Set([...entry.scope, ...(JSON.parse(r.scope) as string[])])].sort();
      by.set(r.client_id, entry);
    }
    return [...by.values()];
  }

  /**
   * Ends every grant of the user (the account is blocked or deleted): every refresh family is
   * revoked, every grant a redeemed code became is put on the revocation list (its signed access
   * tokens stop being live), every code and opaque token is deleted.
   */
  revokeEverything(now: number): void {
    this.revokeFamiliesOfSession(null, now);
    const redeemed = this.sql.exec<{ family_id: string }>('SELECT family_id FROM auth_codes WHERE family_id IS NOT NULL').toArray();
    for (const { family_id } of redeemed) this.revocations.add(grantKey(family_id), now + MAX_ACCESS_TOKEN_MS);
    this.sql.exec('DELETE FROM auth_codes');
    this.opaque.clear();
  }

  /** Deletes expired codes and dead families; returns the next time something expires (or null). */
  purge(now: number): number | null {
    this.sql.exec('DELETE FROM auth_codes WHERE expires_at <= ?', now);
    this.opaque.purge(now);
    const dead = this.sql
      .exec<{ family_id: string }>(
        'SELECT family_id FROM refresh_families WHERE idle_expires_at <= ? OR absolute_expires_at <= ? OR revoked_at IS NOT NULL',
        now,
        now,
      )
      .toArray();
    for (const { family_id } of dead) {
      this.sql.exec('DELETE FROM refresh_used WHERE family_id = ?', family_id);
      this.sql.exec('DELETE FROM refresh_families WHERE family_id = ?', family_id);
    }
    return this.nextExpiry();
  }

  nextExpiry(): number | null {
    const a = this.sql.exec<{ t: number | null }>('SELECT MIN(expires_at) AS t FROM auth_codes').one().t;
    const b = this.sql
      .exec<{ t: number | null }>(
        'SELECT MIN(MIN(idle_expires_at, absolute_expires_at)) AS t FROM refresh_families WHERE revoked_at IS NULL',
      )
      .one().t;
    const c = this.opaque.nextExpiry();
    const all = [a, b, c].filter((t): t is number => t !== null);
    return all.length ? Math.min(...all) : null;
  }
}
