import { randomToken, sha256 } from '../lib/crypto';

/**
 * Opaque access tokens (the phantom-token pattern), in the Durable Object of their owner: the JWT
 * is kept under the hash of a random secret; `grant_id` ties it to the code or refresh family it
 * was issued under, so revoking that grant takes the token with it.
 */
export class OpaqueTokens {
  constructor(private readonly sql: SqlStorage) {
    sql.exec(
      `CREATE TABLE IF NOT EXISTS opaque_tokens (hash TEXT PRIMARY KEY, jwt TEXT NOT NULL, expires_at INTEGER NOT NULL, grant_id TEXT)`,
    );
  }

  /** Keeps `jwt` until `expiresAt`; returns the secret the client will hold (null when `may` says no). */
  async store(jwt: string, expiresAt: number, grantId: string | null, may: () => boolean = () => true): Promise<string | null> {
    const secret = randomToken(32);
    const hash = await sha256(secret);
    if (!may()) return null;
    this.sql.exec('INSERT INTO opaque_tokens (hash, jwt, expires_at, grant_id) VALUES (?, ?, ?, ?)', hash, jwt, expiresAt, grantId);
    return secret;
  }

  /** The JWT an opaque token stands for, while it lives. */
  async resolve(secret: string, now: number): Promise<string | null> {
    const hash = await sha256(secret);
    const row = this.sql
      .exec<{ jwt: string; expires_at: number }>('SELECT jwt, expires_at FROM opaque_tokens WHERE hash = ?', hash)
      .toArray()[0];
    return row && now < row.expires_at ? row.jwt : null;
  }

  async revoke(secret: string): Promise<boolean> {
    const hash = await sha256(secret);
    return this.sql.exec('DELETE FROM opaque_tokens WHERE hash = ? RETURNING hash', hash).toArray().length > 0;
  }

  deleteOfGrant(grantId: string): void {
    this.sql.exec('DELETE FROM opaque_tokens WHERE grant_id = ?', grantId);
  }

  clear(): void {
    this.sql.exec('DELETE FROM opaque_tokens');
  }

  purge(now: number): void {
    this.sql.exec('DELETE FROM opaque_tokens WHERE expires_at <= ?', now);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ t: number | null }>('SELECT MIN(expires_at) AS t FROM opaque_tokens').one().t;
  }
}
