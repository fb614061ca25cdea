/**
 * Whether a user's object may still create anything, inside that user's UserSessions object:
 * - `blocked_at`: set while the account is blocked (by the admin API). Nothing new — session,
 *   code, refresh rotation, opaque token — is made, and no access token counts as live.
 * - `tokens_not_before` (seconds): signed access tokens issued before this are not live, even after
 *   an unblock — a token that was out when the account was blocked never comes back to life.
 * - `forget_at`: the account was deleted; the object wipes its storage at this time (once every
 *   token it could speak for has expired), and until then stays blocked, so a sign-in that read the
 *   account just before it went cannot start a session in it.
 */
export class AccountState {
  constructor(private readonly sql: SqlStorage) {
    sql.exec('CREATE TABLE IF NOT EXISTS account_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL)');
  }

  private read(key: string): number | null {
    return this.sql.exec<{ value: number }>('SELECT value FROM account_state WHERE key = ?', key).toArray()[0]?.value ?? null;
  }

  private write(key: string, value: number | null): void {
    if (value === null) this.sql.exec('DELETE FROM account_state WHERE key = ?', key);
    else
      this.sql.exec(
        'INSERT INTO account_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
        key,
        value,
      );
  }

  get blocked(): boolean {
    return this.read('blocked_at') !== null;
  }

  /** Blocks (keeping the first time it was blocked) and moves the access-token watermark to now. */
  block(now: number): void {
    if (!this.blocked) this.write('blocked_at', now);
    this.write('tokens_not_before', Math.floor(now / 1000));
  }

  unblock(): void {
    this.write('blocked_at', null);
  }

  /** Whether an access token issued at `iat` (seconds) predates the last block. */
  issuedBeforeBlock(iat: number | null): boolean {
    const notBefore = this.read('tokens_not_before');
    return notBefore !== null && (iat === null || iat < notBefore);
  }

  /** Marks the object for wiping at `at` (ms). */
  forgetAt(at: number): void {
    this.write('forget_at', at);
  }

  get forgetTime(): number | null {
    return this.read('forget_at');
  }
}
