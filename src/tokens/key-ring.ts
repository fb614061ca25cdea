import { importJWK, type JWK } from 'jose';
import type { Database } from '../db/client';
import { loadKeys, loadPrivateJwk, type SigningAlg, type StoredKey } from './key-store';
import { ensureKeys, viewKeys, type KeyPolicy, type KeyView } from './keys';

/** How long an isolate trusts its copy of the key list before reading D1 again. */
export const KEY_CACHE_MS = 5 * 60_000;
/** An unknown kid triggers a reload at most this often (so garbage kids cannot make us hammer D1). */
const MISS_RELOAD_MS = 30_000;
/** Signing re-reads the key list this often, so a rotation on demand takes effect within a minute everywhere. */
export const SIGNER_CACHE_MS = 60_000;

/**
 * The isolate's cache of signing keys. Verification of a token whose key is known costs no I/O;
 * D1 is read when the cache is older than KEY_CACHE_MS, or on an unknown kid at most every 30 s;
 * signing re-reads it after a minute (so an on-demand rotation reaches every isolate that fast).
 * New keys are published KEY_PUBLISH_LEAD (≥ 10 min) before they sign, so every isolate has them
 * before any token needs them.
 */
export class KeyRing {
  private keys: StoredKey[] = [];
  private loadedAt = -Infinity;
  private loading: Promise<void> | undefined;
  private readonly publicKeys = new Map<string, Promise<CryptoKey>>();
  private readonly privateKeys = new Map<string, Promise<CryptoKey>>();

  constructor(
    private readonly db: Database,
    private readonly kek: string,
    private readonly policy: KeyPolicy,
  ) {}

  private reload(now: number): Promise<void> {
    this.loading ??= (async () => {
      try {
        let keys = await loadKeys(this.db);
        if (keys.length === 0 || !viewKeys(keys, now, this.policy).signers.ES256) {
          await ensureKeys(this.db, this.kek, now);
          keys = await loadKeys(this.db);
        }
        this.keys = keys;
        this.loadedAt = now;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private viewed: { keys: StoredKey[]; second: number; view: KeyView } | undefined;

  /**
   * The view of the keys at `now`, from cache when it is younger than `maxAge`. The view is worked
   * out once per second of `now` (keys are published minutes before they sign, so which key signs
   * or is published is never a second-sharp matter).
   */
  async view(now: number, maxAge = KEY_CACHE_MS): Promise<KeyView> {
    // Older than maxAge — or loaded "in the future" (a clock that went back): read again.
    if (Math.abs(now - this.loadedAt) > maxAge) await this.reload(now);
    const second = Math.floor(now / 1000);
    if (this.viewed?.keys !== this.keys || this.viewed.second !== second)
      this.viewed = { keys: this.keys, second, view: viewKeys(this.keys, now, this.policy) };
    return this.viewed.view;
  }

  /** The key that signs for `alg` now, with its private half (decrypted once per isolate). */
  async signer(alg: SigningAlg, now: number): Promise<{ kid: string; key: CryptoKey }> {
    let key = (await this.view(now, SIGNER_CACHE_MS)).signers[alg];
    if (!key) {
      await this.reload(now);
      key = viewKeys(this.keys, now, this.policy).signers[alg];
    }
    if (!key) throw new Error(`no ${alg} signing key`);
    const kid = key.kid;
    let privateKey = this.privateKeys.get(kid);
    if (!privateKey) {
      privateKey = loadPrivateJwk(this.db, this.kek, kid).then((jwk) => {
        if (!jwk) throw new Error(`signing key ${kid} vanished`);
        return importJWK(jwk, alg) as Promise<CryptoKey>;
      });
      privateKey.catch(() => this.privateKeys.delete(kid));
      this.privateKeys.set(kid, privateKey);
    }
    return { kid, key: await privateKey };
  }

  /** The public key for a published kid, or undefined (unknown, expired, or another algorithm). */
  async verificationKey(kid: string, alg: string, now: number): Promise<CryptoKey | undefined> {
    let found = (await this.view(now)).published.find((k) => k.kid === kid);
    if (!found && now - this.loadedAt > MISS_RELOAD_MS) {
      await this.reload(now);
      found = viewKeys(this.keys, now, this.policy).published.find((k) => k.kid === kid);
    }
    if (!found || found.alg !== alg) return undefined;
    let key = this.publicKeys.get(kid);
    if (!key) {
      key = importJWK(found.publicJwk, found.alg) as Promise<CryptoKey>;
      this.publicKeys.set(kid, key);
    }
    return key;
  }

  /** The public JWKS document. */
  async jwks(now: number): Promise<{ keys: (JWK & { kid: string; alg: string; use: 'sig' })[] }> {
    const { published } = await this.view(now);
    return { keys: published.map((k) => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' as const })) };
  }

  private jwksText: { kids: string; text: string } | undefined;

  /** The JWKS document as JSON text, serialised again only when the published keys change. */
  async jwksJson(now: number): Promise<string> {
    const { published } = await this.view(now);
    const kids = published.map((k) => k.kid).join(' ');
    if (this.jwksText?.kids !== kids) this.jwksText = { kids, text: JSON.stringify(await this.jwks(now)) };
    return this.jwksText.text;
  }
}
