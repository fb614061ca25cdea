/**
 * Revoked grants and access tokens of one user, kept until no token issued under them can still be
 * valid. A signed access token names its grant (`gid`) and itself (`jti`); where an answer must
 * reflect revocation at once (userinfo, introspection, the gateway's `fresh` routes) the owner's
 * object is asked whether either is on this list. Elsewhere the bound is the token's lifetime.
 */
export class Revocations {
  constructor(private readonly sql: SqlStorage) {
    sql.exec('CREATE TABLE IF NOT EXISTS revocations (key TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)');
  }

  /** Records `key` (`grant:<id>` or `token:<jti>`) as revoked until `until` (ms); a later `until` wins. */
  add(key: string, until: number): void {
    this.sql.exec(
      'INSERT INTO revocations (key, expires_at) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)',
      key,
      until,
    );
  }

  /** Whether any of `keys` is revoked. */
  has(keys: string[]): boolean {
    if (keys.length === 0) return false;
    return (
      this.sql.exec(`SELECT 1 FROM revocations WHERE key IN (${keys.map(() => '?').join(', ')}) LIMIT 1`, ...keys).toArray().length > 0
    );
  }

  purge(now: number): void {
    this.sql.exec('DELETE FROM revocations WHERE expires_at <= ?', now);
  }

  nextExpiry(): number | null {
    return this.sql.exec<{ next: number | null }>('SELECT MIN(expires_at) AS next FROM revocations').one().next;
  }
}

export const grantKey = (grantId: string) => `grant:${grantId}`;
export const tokenKey = (jti: string) => `token:${jti}`;
