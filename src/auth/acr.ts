/**
 * Authentication methods (`amr`, RFC 8176 values where one exists) and the authentication context
 * classes (`acr`) Gatehouse derives from them. docs/authentication.md is the reference for both.
 *
 * amr: `pwd` password · `email` magic link or email code · `fed` an upstream identity provider ·
 *      `otp` TOTP or a recovery code ·
 *      `hwk` a passkey (WebAuthn) · `user` the authenticator verified the user (PIN, biometric) ·
 *      `mfa` two independent factors were used.
 */
export const ACR = {
  /** One factor: a password, a link or code sent by email, or an upstream identity provider. */
  oneFactor: 'urn:gatehouse:acr:1fa',
  /** Two factors: a first factor plus TOTP, a recovery code or a passkey. */
  mfa: 'urn:gatehouse:acr:mfa',
  /** Phishing-resistant: a passkey with user verification (origin-bound, so it cannot be relayed). */
  phishingResistant: 'urn:gatehouse:acr:phr',
} as const;

export const ACR_VALUES: readonly string[] = [ACR.oneFactor, ACR.mfa, ACR.phishingResistant];
const RANK: Record<string, number> = { [ACR.oneFactor]: 1, [ACR.mfa]: 2, [ACR.phishingResistant]: 3 };

const FIRST = ['pwd', 'email', 'fed'];
const SECOND = ['otp', 'hwk'];

/** The amr after adding `added` to a sign-in that already had `amr` (step-up keeps what was there). */
export function combineAmr(amr: readonly string[], added: readonly string[]): string[] {
  const all = new Set([...amr, ...added].filter((m) => m !== 'mfa'));
  const twoFactors = (FIRST.some((m) => all.has(m)) && SECOND.some((m) => all.has(m))) || (all.has('hwk') && all.has('user'));
  if (twoFactors) all.add('mfa');
  return [...all].sort();
}

/** The acr a sign-in with these methods earns. */
export function acrOf(amr: readonly string[]): string {
  if (amr.includes('hwk') && amr.includes('user')) return ACR.phishingResistant;
  if (amr.includes('mfa')) return ACR.mfa;
  return ACR.oneFactor;
}

/**
 * Whether `have` satisfies a request for any of `wanted`. Gatehouse's own values are ordered
 * (phr > mfa > 1fa), so a stronger class satisfies a weaker one; other values only match exactly.
 */
export function acrSatisfies(have: string | null, wanted: readonly string[]): boolean {
  if (wanted.length === 0) return true;
  if (!have) return false;
  if (wanted.includes(have)) return true;
  const known = wanted.filter((w) => RANK[w] !== undefined).map((w) => RANK[w]!);
  return known.length > 0 && (RANK[have] ?? 0) >= Math.min(...known);
}

/** The weakest of Gatehouse's values among `wanted` (what to step up to), or null when none is ours. */
export function targetAcr(wanted: readonly string[]): string | null {
  const known = wanted.filter((w) => RANK[w] !== undefined).sort((a, b) => RANK[a]! - RANK[b]!);
  return known[0] ?? null;
}

/**
 * What a relying party demands of a sign-in: `wanted` acr values (OIDC `acr_values`, voluntary)
 * and whether a second factor is essential (a client's `requireMfa`).
 */
export interface AcrDemand {
  wanted: readonly string[];
  essential: boolean;
}

/**
 * The acr to step up to before `have` may serve `demand`, or null when it already does — or when a
 * voluntary demand is one the account cannot meet (no second factor, or no passkey for `phr`): then
 * the sign-in goes on with the acr it has, and the tokens say which. An essential demand is always
 * stepped up to (at least `mfa`); the account's factors are only loaded when a voluntary demand
 * needs them. One rule for the authorization endpoint and the device grant.
 */
export async function stepUpTarget(
  have: string | null,
  demand: AcrDemand,
  loadFactors: () => Promise<{ totp: boolean; passkeys: number }>,
): Promise<string | null> {
  const wanted = [...demand.wanted, ...(demand.essential ? [ACR.mfa] : [])];
  const target = targetAcr(wanted);
  if (!target || acrSatisfies(have, wanted)) return null;
  if (!demand.essential) {
    const factors = await loadFactors();
    const reachable = target === ACR.phishingResistant ? factors.passkeys > 0 : factors.totp || factors.passkeys > 0;
    if (!reachable) return null;
  }
  return demand.essential && target === ACR.oneFactor ? ACR.mfa : target;
}

/**
 * The second factors that can raise a sign-in to `acr`, to offer on the second step, or null when
 * none can: a phishing-resistant sign-in comes from a passkey alone, so codes (TOTP, recovery) are
 * not offered for it; any other target takes every factor the account has, given it has an
 * authenticator app or a passkey.
 */
export function factorsMeeting<F extends { totp: boolean; recoveryCodesLeft: number; passkeys: number }>(
  factors: F,
  acr: string | undefined,
): F | null {
  if (acr === ACR.phishingResistant) return factors.passkeys > 0 ? { ...factors, totp: false, recoveryCodesLeft: 0 } : null;
  // Recovery codes back up an authenticator app; alone they are no second factor (hasSecondFactor).
  return factors.totp || factors.passkeys > 0 ? factors : null;
}
