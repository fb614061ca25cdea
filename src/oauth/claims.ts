import * as z from 'zod';
import { shownEmail } from '../identity/email';
import type { UserView } from '../identity/users';
import { oauthError } from '../lib/errors';

/**
 * Which claims each scope releases (OIDC Core §5.4), plus Gatehouse's business claims `roles` and
 * `tier` under `roles`. A claim the user record does not hold is omitted, never sent empty.
 */
export const SCOPE_CLAIMS: Record<string, readonly string[]> = {
  profile: [
    'name',
    'family_name',
    'given_name',
    'middle_name',
    'nickname',
    'preferred_username',
    'profile',
    'picture',
    'website',
    'gender',
    'birthdate',
    'zoneinfo',
    'locale',
    'updated_at',
  ],
  email: ['email', 'email_verified'],
  address: ['address'],
  phone: ['phone_number', 'phone_number_verified'],
  roles: ['roles', 'tier'],
};

/** Every claim about the user Gatehouse can release, as the record holds it. */
function allClaims(user: UserView): Record<string, unknown> {
  // An account made from an upstream identity that shared no address has none to show.
  const email = shownEmail(user.email);
  return {
    ...user.profile,
    // With no username of its own, the address a person signs in with is what they go by.
    preferred_username: user.profile.preferred_username ?? email ?? undefined,
    updated_at: Math.floor(user.updatedAt / 1000),
    email: email ?? undefined,
    email_verified: email === null ? undefined : user.emailVerified,
    roles: user.roles,
    tier: user.tier,
  };
}

/** The claims named, as far as the user has them (`sub` always). */
export function releaseClaims(user: UserView, names: Iterable<string>): Record<string, unknown> {
  const all = allClaims(user);
  const out: Record<string, unknown> = { sub: user.id };
  for (const name of names) if (all[name] !== undefined && name !== 'sub') out[name] = all[name];
  return out;
}

/** The claim names a scope releases. */
export const scopeClaimNames = (scope: readonly string[]) => scope.flatMap((s) => SCOPE_CLAIMS[s] ?? []);

/** Claims released by scope (userinfo), plus any named in the claims request. */
export const userClaims = (user: UserView, scope: readonly string[], requested: readonly string[] = []) =>
  releaseClaims(user, [...scopeClaimNames(scope), ...requested]);

// ── The `claims` request parameter (OIDC Core §5.5) ─────────────────────────────────────────
const claimSpec = z
  .union([
    z.null(),
    z.object({ essential: z.boolean().optional(), value: z.unknown().optional(), values: z.array(z.unknown()).max(20).optional() }),
  ])
  .optional();
const claimSet = z.record(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/), claimSpec).refine((r) => Object.keys(r).length <= 50);
const claimsRequestSchema = z.object({ userinfo: claimSet.optional(), id_token: claimSet.optional() });

export interface ClaimsRequest {
  /** Claim names asked for at userinfo, and in the ID token. */
  userinfo: string[];
  idToken: string[];
  /** `acr` asked for in the ID token with `essential` (and the values it may take). */
  acr: { values: string[]; essential: boolean } | null;
  /** A `sub` value the ID token must have (§5.5.1): another user must sign in. */
  sub: string | null;
}

/** Parses `claims` (a JSON object); anything else is `invalid_request`. */
export function parseClaimsRequest(raw: string | undefined): ClaimsRequest | null {
  if (raw === undefined) return null;
  let json: unknown;
  try {
    json = raw.length <= 4096 ? JSON.parse(raw) : undefined;
  } catch {
    json = undefined;
  }
  const parsed = claimsRequestSchema.safeParse(json);
  if (!parsed.success)
    throw oauthError('invalid_request', 'claims must be a JSON object with userinfo and id_token members (OIDC Core 5.5).');
  const { userinfo = {}, id_token: idToken = {} } = parsed.data;
  const acr = idToken['acr'];
  const acrValues = acr
    ? [...(acr.values ?? []), ...(acr.value !== undefined ? [acr.value] : [])].filter((v): v is string => typeof v === 'string')
    : [];
  const sub = idToken['sub']?.value;
  return {
    userinfo: Object.keys(userinfo),
    idToken: Object.keys(idToken),
    acr: acr && (acrValues.length || acr.essential) ? { values: acrValues, essential: acr.essential === true } : null,
    sub: typeof sub === 'string' ? sub : null,
  };
}
