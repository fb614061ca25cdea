import * as z from 'zod';
import type { User } from '../db/schema';

/**
 * What an operator may write of a user's record: the OpenID Connect standard claims (OIDC Core
 * §5.1) the record holds, and the two metadata objects. Each field is checked here — a URL is an
 * http(s) URL, a time zone one the runtime knows, a phone number E.164 — so nothing malformed
 * reaches an ID token or a header. `null` clears a field.
 */

const text = (max: number) => z.string().trim().min(1).max(max);
const url = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .max(2000)
  .describe('An http(s) URL.');

const timeZone = z
  .string()
  .max(64)
  .refine(
    (tz) => {
      try {
        new Intl.DateTimeFormat('en', { timeZone: tz });
        return /^[A-Za-z][A-Za-z0-9_+/-]*$/.test(tz);
      } catch {
        return false;
      }
    },
    { message: 'must be an IANA time zone, e.g. Europe/Paris' },
  );

const locale = z
  .string()
  .max(35)
  .refine(
    (tag) => {
      try {
        return Intl.getCanonicalLocales(tag).length === 1;
      } catch {
        return false;
      }
    },
    { message: 'must be a BCP 47 language tag, e.g. fr-CA' },
  );

const birthdate = z.string().regex(/^\d{4}(-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))?$/, 'must be YYYY or YYYY-MM-DD (OIDC Core §5.1)');

const address = z
  .object({
    formatted: text(500),
    street_address: text(500),
    locality: text(200),
    region: text(200),
    postal_code: text(40),
    country: text(100),
  })
  .partial()
  .strict()
  .describe('OIDC Core §5.1.1 address fields.');

const FIELDS = {
  name: text(200),
  given_name: text(200),
  family_name: text(200),
  middle_name: text(200),
  nickname: text(200),
  preferred_username: text(200),
  profile: url,
  picture: url,
  website: url,
  gender: text(50),
  birthdate,
  zoneinfo: timeZone,
  locale,
  phone_number: z.string().regex(/^\+[1-9]\d{1,14}$/, 'must be an E.164 number, e.g. +14155550100'),
  phone_number_verified: z.boolean(),
  address,
};

/** The profile fields, each optional (absent: unchanged) and nullable (null: cleared). */
export const profileChange = z
  .object(
    Object.fromEntries(Object.entries(FIELDS).map(([k, v]) => [k, v.nullable().optional()])) as {
      [K in keyof typeof FIELDS]: z.ZodOptional<z.ZodNullable<(typeof FIELDS)[K]>>;
    },
  )
  .strict()
  .describe('OpenID Connect standard claims (OIDC Core §5.1); null clears one.');
export type ProfileChange = z.output<typeof profileChange>;

/** The profile as the record holds it (fields it does not hold are absent). */
export const profileOutput = z.object(FIELDS).partial().describe('OpenID Connect standard claims (OIDC Core §5.1) the record holds.');

type ProfileColumns = Partial<Pick<User, (typeof COLUMNS)[keyof typeof COLUMNS] | 'phoneNumberVerifiedAt' | 'address'>>;

const COLUMNS = {
  name: 'name',
  given_name: 'givenName',
  family_name: 'familyName',
  middle_name: 'middleName',
  nickname: 'nickname',
  preferred_username: 'preferredUsername',
  profile: 'profileUrl',
  picture: 'picture',
  website: 'website',
  gender: 'gender',
  birthdate: 'birthdate',
  zoneinfo: 'zoneinfo',
  locale: 'locale',
  phone_number: 'phoneNumber',
} as const;

/** A profile change as users columns (only the fields given). */
export function profileColumns(p: ProfileChange, now: number): ProfileColumns {
  const out: Record<string, unknown> = {};
  for (const [field, column] of Object.entries(COLUMNS)) {
    const v = p[field as keyof ProfileChange];
    if (v !== undefined) out[column] = v;
  }
  if (p.phone_number_verified !== undefined) out.phoneNumberVerifiedAt = p.phone_number_verified ? now : null;
  if (p.address !== undefined) out.address = p.address === null ? null : JSON.stringify(p.address);
  return out as ProfileColumns;
}

// ── Metadata ──────────────────────────────────────────────────────────────────────────────────
/** Largest serialized metadata object (each of app_metadata and user_metadata), in bytes of UTF-8. */
export const METADATA_MAX_BYTES = 16 * 1024;
/** Deepest nesting: the object itself is level 1. */
export const METADATA_MAX_DEPTH = 5;

const depthOf = (v: unknown): number =>
  v !== null && typeof v === 'object' ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depthOf)) : 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A metadata object: a JSON object (not an array, not null), at most METADATA_MAX_BYTES serialized
 * and METADATA_MAX_DEPTH deep, with no `__proto__` key (which a JSON parser keeps and an object
 * literal would not). Replaced whole when written.
 */
export const metadataInput = z
  .custom<Record<string, unknown>>(isObject, { message: 'must be a JSON object' })
  .superRefine((v, ctx) => {
    const hasProtoKey = (o: unknown): boolean =>
      o !== null &&
      typeof o === 'object' &&
      (Object.hasOwn(o, '__proto__') || Object.values(o as Record<string, unknown>).some(hasProtoKey));
    if (hasProtoKey(v)) ctx.addIssue({ code: 'custom', message: 'must not have a __proto__ key' });
    else if (depthOf(v) > METADATA_MAX_DEPTH)
      ctx.addIssue({ code: 'custom', message: `must be at most ${METADATA_MAX_DEPTH} levels deep` });
    else if (new TextEncoder().encode(JSON.stringify(v)).length > METADATA_MAX_BYTES)
      ctx.addIssue({ code: 'custom', message: `must be at most ${METADATA_MAX_BYTES / 1024} KiB as JSON` });
  })
  .meta({
    type: 'object',
    description: `A JSON object, at most ${METADATA_MAX_BYTES / 1024} KiB serialized and ${METADATA_MAX_DEPTH} levels deep; replaced whole.`,
  });

/** A metadata column as stored (a JSON object), read back; an unreadable one reads as empty. */
export function readMetadata(column: string): Record<string, unknown> {
  try {
    const v = JSON.parse(column) as unknown;
    return isObject(v) ? v : {};
  } catch {
    return {};
  }
}

// ── Roles and tiers ─────────────────────────────────────────────────────────────────────────────
/** A role or tier name: lower-case letters, digits, `_`, `:` and `-`, starting with a letter. */
export const ROLE_NAME = /^[a-z][a-z0-9_:-]{0,63}$/;
export const roleName = z.string().regex(ROLE_NAME, `must match ${ROLE_NAME.source}`);
/** At most this many roles per user. */
export const MAX_ROLES = 50;
export const rolesInput = z
  .array(roleName)
  .max(MAX_ROLES)
  .transform((r) => [...new Set(r)].sort())
  .describe('The whole set of roles (replaces the current one).');
