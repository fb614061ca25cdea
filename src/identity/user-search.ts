import { and, asc, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, notLike, or, type SQL, sql } from 'drizzle-orm';
import type { Database } from '../db/client';
import { userRoles, users, type User } from '../db/schema';
import { NO_EMAIL_DOMAIN, normaliseEmail } from './email';

/**
 * Finding users for operators. Every search walks an index in order and stops after one page, so
 * a page costs the same at a thousand users as at a million (bench/users.ts):
 * - by address (exact, or a prefix as the range `email >= p AND email < p || U+10FFFF` on the
 *   unique index), in address order;
 * - by role (user_roles_role_idx), in user-id order;
 * - by last sign-in (users_last_sign_in_idx), most recent first;
 * - otherwise newest first (users_created_idx; with a tier, users_tier_idx).
 * Other filters narrow what the walk finds: `blocked` alone (no index) walks until it has a page.
 * Pages continue after the previous page's last sort key (keyset), never at an offset.
 */
export interface UserFilters {
  email?: string | undefined;
  email_prefix?: string | undefined;
  id?: string | undefined;
  role?: string | undefined;
  tier?: string | undefined;
  blocked?: boolean | undefined;
  created_since?: number | undefined;
  created_until?: number | undefined;
  last_sign_in_since?: number | undefined;
  last_sign_in_until?: number | undefined;
}

export type UserOrder = 'email' | 'role' | 'last_sign_in' | 'created';

/** Which index a search walks (and so the order of its pages). */
export function orderOf(f: UserFilters): UserOrder {
  if (f.email !== undefined || f.email_prefix !== undefined) return 'email';
  if (f.role !== undefined) return 'role';
  if (f.last_sign_in_since !== undefined || f.last_sign_in_until !== undefined) return 'last_sign_in';
  return 'created';
}

/** The highest code point: every address starting with `p` sorts before `p` followed by it. */
const TOP = '\u{10FFFF}';

export type SortKey = (string | number)[];

export interface UserPage {
  users: (User & { roles: string[] })[];
  /** The last user's sort key when there may be more, else null. */
  next: SortKey | null;
}

export async function searchUsers(db: Database, f: UserFilters, after: SortKey | undefined, limit: number): Promise<UserPage> {
  const order = orderOf(f);
  const prefix = f.email_prefix === undefined ? undefined : normaliseEmail(f.email_prefix);
  const where: (SQL | undefined)[] = [
    f.email !== undefined ? eq(users.email, normaliseEmail(f.email)) : undefined,
    prefix !== undefined ? and(gte(users.email, prefix), lt(users.email, `${prefix}${TOP}`)) : undefined,
    // An account without an address has a placeholder (email.ts): it is never found by address.
    order === 'email' ? notLike(users.email, `%@${NO_EMAIL_DOMAIN}`) : undefined,
    f.id !== undefined ? eq(users.id, f.id) : undefined,
    f.role !== undefined ? eq(userRoles.role, f.role) : undefined,
    f.tier === undefined
      ? undefined
      : order === 'created'
        ? // A hint that the tier is selective: walk users_tier_idx (tier, created_at) in order, not the
          // whole of users_created_idx filtering by tier (which SQLite's statistics may prefer).
          sql`likelihood(${users.tier} = ${f.tier}, 0.0001)`
        : eq(users.tier, f.tier),
    f.blocked === undefined ? undefined : f.blocked ? isNotNull(users.blockedAt) : isNull(users.blockedAt),
    f.created_since !== undefined ? gte(users.createdAt, f.created_since) : undefined,
    f.created_until !== undefined ? lt(users.createdAt, f.created_until) : undefined,
    f.last_sign_in_since !== undefined ? gte(users.lastSignInAt, f.last_sign_in_since) : undefined,
    f.last_sign_in_until !== undefined ? lt(users.lastSignInAt, f.last_sign_in_until) : undefined,
    after ? afterKey(order, after) : undefined,
  ];
  const base = db.select({ user: users }).from(users);
  const query = (order === 'role' ? base.innerJoin(userRoles, eq(userRoles.userId, users.id)) : base).where(and(...where));
  const rows = await (order === 'email'
    ? query.orderBy(asc(users.email))
    : order === 'role'
      ? query.orderBy(asc(userRoles.userId))
      : order === 'last_sign_in'
        ? query.orderBy(desc(users.lastSignInAt), desc(users.id))
        : query.orderBy(desc(users.createdAt), desc(users.id))
  )
    .limit(limit + 1)
    .all();
  const page = rows.slice(0, limit).map((r) => r.user);
  const roles = page.length
    ? await db
        .select()
        .from(userRoles)
        .where(
          inArray(
            userRoles.userId,
            page.map((u) => u.id),
          ),
        )
        .all()
    : [];
  const last = page.at(-1);
  return {
    users: page.map((u) => ({
      ...u,
      roles: roles
        .filter((r) => r.userId === u.id)
        .map((r) => r.role)
        .sort(),
    })),
    next: rows.length > limit && last ? keyOf(order, last) : null,
  };
}

function keyOf(order: UserOrder, u: User): SortKey {
  switch (order) {
    case 'email':
      return [u.email];
    case 'role':
      return [u.id];
    case 'last_sign_in':
      return [u.lastSignInAt ?? 0, u.id];
    case 'created':
      return [u.createdAt, u.id];
  }
}

/** Strictly after the previous page's last sort key, in the order's direction. */
function afterKey(order: UserOrder, [a, b]: SortKey): SQL | undefined {
  switch (order) {
    case 'email':
      return gt(users.email, String(a));
    case 'role':
      return gt(userRoles.userId, String(a));
    case 'last_sign_in':
      return or(lt(users.lastSignInAt, Number(a)), and(eq(users.lastSignInAt, Number(a)), lt(users.id, String(b))));
    case 'created':
      return or(lt(users.createdAt, Number(a)), and(eq(users.createdAt, Number(a)), lt(users.id, String(b))));
  }
}
