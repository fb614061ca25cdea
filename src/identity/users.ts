import { eq, getTableColumns, sql, type SQL } from 'drizzle-orm';
import type { Database } from '../db/client';
import { userRoles, users, type User } from '../db/schema';
import { accountBlocked } from '../lib/errors';

export type { User };

/** A user record with its roles (sorted), as one query reads them. */
export type UserWithRoles = User & { roles: string[] };

export const byEmail = (email: string) => eq(users.email, email);
export const byId = (id: string) => eq(users.id, id);

export interface UserView {
  id: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  tier: string;
  createdAt: number;
  updatedAt: number;
  /** The OpenID Connect standard claims the record holds (OIDC Core §5.1), absent ones omitted. */
  profile: StandardProfile;
}

/** OIDC Core §5.1 claims other than sub, email and updated_at, as the record holds them. */
export interface StandardProfile {
  name?: string;
  given_name?: string;
  family_name?: string;
  middle_name?: string;
  nickname?: string;
  preferred_username?: string;
  profile?: string;
  picture?: string;
  website?: string;
  gender?: string;
  birthdate?: string;
  zoneinfo?: string;
  locale?: string;
  phone_number?: string;
  phone_number_verified?: boolean;
  address?: Record<string, string>;
}

export const newUserId = () => crypto.randomUUID();

/** The query for a user record, to run alone or in a batch. */
export const userQuery = (db: Database, where: SQL) => db.select().from(users).where(where);

export async function findUserByEmail(db: Database, email: string): Promise<User | undefined> {
  return userQuery(db, byEmail(email)).get();
}

export async function findUserById(db: Database, id: string): Promise<User | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

/**
 * The query for a user and their roles in one statement (the roles a JSON array from a correlated
 * subquery over user_roles' primary key), to run alone or in a batch.
 */
export function userWithRolesQuery(db: Database, where: SQL) {
  return db
    .select({
      ...getTableColumns(users),
      // Aliased and qualified by hand: Drizzle leaves a column in a select field unqualified.
      roles: sql<string[]>`(SELECT json_group_array(r.role) FROM user_roles r WHERE r.user_id = users.id)`.mapWith((v: string) =>
        (JSON.parse(v) as string[]).sort(),
      ),
    })
    .from(users)
    .where(where);
}

/** A user and their roles, in one query; undefined when there is no such user. */
export async function findUserWithRoles(db: Database, where: SQL): Promise<UserWithRoles | undefined> {
  return userWithRolesQuery(db, where).get();
}

/**
 * A user as the token and session code uses them — the record and its roles — read in one query;
 * undefined when the user no longer exists.
 */
export async function findUserView(db: Database, id: string): Promise<UserView | undefined> {
  const user = await findUserWithRoles(db, byId(id));
  return user ? viewOf(user, user.roles) : undefined;
}

/** A blocked account signs in by no method (auth/account-lifecycle.ts blocks and unblocks). */
export function assertNotBlocked(user: Pick<User, 'blockedAt'>): void {
  if (user.blockedAt !== null) throw accountBlocked();
}

export async function rolesOf(db: Database, userId: string): Promise<string[]> {
  const rows = await db.select({ role: userRoles.role }).from(userRoles).where(eq(userRoles.userId, userId)).all();
  return rows.map((r) => r.role).sort();
}

function profileOf(user: User): StandardProfile {
  const text: [keyof StandardProfile, string | null][] = [
    ['name', user.name],
    ['given_name', user.givenName],
    ['family_name', user.familyName],
    ['middle_name', user.middleName],
    ['nickname', user.nickname],
    ['preferred_username', user.preferredUsername],
    ['profile', user.profileUrl],
    ['picture', user.picture],
    ['website', user.website],
    ['gender', user.gender],
    ['birthdate', user.birthdate],
    ['zoneinfo', user.zoneinfo],
    ['locale', user.locale],
    ['phone_number', user.phoneNumber],
  ];
  const out: StandardProfile = {};
  for (const [k, v] of text) if (v) (out as Record<string, unknown>)[k] = v;
  if (user.phoneNumber) out.phone_number_verified = user.phoneNumberVerifiedAt !== null;
  if (user.address) {
    try {
      const a = JSON.parse(user.address) as unknown;
      if (a && typeof a === 'object' && !Array.isArray(a))
        out.address = Object.fromEntries(Object.entries(a).filter((e): e is [string, string] => typeof e[1] === 'string'));
    } catch {
      // an unreadable address is left out rather than failing a sign-in
    }
  }
  return out;
}

/** The public shape of a user (never the password hash); roles sorted. */
export function viewOf(user: User, roles: string[]): UserView {
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerifiedAt !== null,
    roles: [...roles].sort(),
    tier: user.tier,
    createdAt: user.createdAt,
    updatedAt: user.updatedAt,
    profile: profileOf(user),
  };
}
