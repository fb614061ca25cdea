/**
 * Self-routing secrets: an authorization code or refresh token names the user whose UserSessions
 * object holds it, so the token endpoint reaches that object without a D1 lookup. The secret part
 * is 256 random bits; only its hash is stored.
 */
const USER_ID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const SECRET = '[A-Za-z0-9_-]{43}';
const CODE = new RegExp(`^ac1\\.(${USER_ID})\\.(${SECRET})$`);
const REFRESH = new RegExp(`^rt1\\.(${USER_ID})\\.([A-Za-z0-9_-]{22})\\.(${SECRET})$`);

export const formatCode = (userId: string, secret: string) => `ac1.${userId}.${secret}`;
export const formatRefreshToken = (userId: string, familyId: string, secret: string) => `rt1.${userId}.${familyId}.${secret}`;

export function parseCode(code: string): { userId: string; secret: string } | null {
  const m = CODE.exec(code);
  return m ? { userId: m[1]!, secret: m[2]! } : null;
}

export function parseRefreshToken(token: string): { userId: string; familyId: string; secret: string } | null {
  const m = REFRESH.exec(token);
  return m ? { userId: m[1]!, familyId: m[2]!, secret: m[3]! } : null;
}
