import { eq } from 'drizzle-orm';
import type { Database } from '../db/client';
import { userRoles, users, type User } from '../db/schema';

export type { User };

export interface UserView {
  id: string;
  email: string;
  emailVerified: boolean;
  roles: string[];
  tier: string;
  createdAt: number;
}

export const newUserId = () => crypto.randomUUID();

export async function findUserByEmail(db: Database, email: string): Promise<User | undefined> {
  return db.select().from(users).where(eq(users.email, email)).get();
}

export async function findUserById(db: Database, id: string): Promise<User | undefined> {
  return db.select().from(users).where(eq(users.id, id)).get();
}

export async function rolesOf(db: Database, userId: string): Promise<string[]> {
  const rows = await db.select({ role: userRoles.role }).from(userRoles).where(eq(userRoles.userId, userId)).all();
  return rows.map((r) => r.role).sort();
}

/** The public shape of a user (never the password hash). */
export function viewOf(user: User, roles: string[]): UserView {
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.emailVerifiedAt !== null,
    roles,
    tier: user.tier,
    createdAt: user.createdAt,
  };
}
