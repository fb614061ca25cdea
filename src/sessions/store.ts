import { failClosed } from '../lib/errors';
import type { CodeInput, CodeRedemption, Grant, RefreshPolicy, RefreshRotation } from './grants';
import type { HeldRequest } from './held-requests';
import type { CreateSessionInput, SessionRecord, UserSessions } from './user-sessions';

/** Typed access to a user's UserSessions object. Every failure becomes a 503 (fail closed). */
export interface SessionStore {
  create(input: CreateSessionInput): Promise<SessionRecord & { secret: string }>;
  refresh(userId: string, sid: string, secret: string, now: number): Promise<SessionRecord | null>;
  get(userId: string, sid: string, now: number): Promise<SessionRecord | null>;
  list(userId: string, now: number): Promise<SessionRecord[]>;
  revoke(userId: string, sid: string): Promise<boolean>;
  revokeAll(userId: string, exceptSid?: string): Promise<number>;
  issueCode(userId: string, input: CodeInput): Promise<string>;
  redeemCode(
    userId: string,
    input: { secret: string; clientId: string; redirectUri: string; codeVerifier: string; now: number; refresh: RefreshPolicy | null },
  ): Promise<CodeRedemption>;
  createRefreshFamily(userId: string, grant: Grant, policy: RefreshPolicy, now: number): Promise<{ familyId: string; secret: string }>;
  rotateRefresh(userId: string, input: { familyId: string; secret: string; clientId: string; now: number; scope?: string[] }): Promise<RefreshRotation>;
  inspectRefresh(userId: string, familyId: string, secret: string, now: number): Promise<(Grant & { expiresAt: number }) | null>;
  revokeRefreshFamily(userId: string, familyId: string): Promise<boolean>;
  /** Opaque access tokens, in the object named `owner` (a user id, or `client:<client_id>`). */
  storeOpaque(owner: string, jwt: string, expiresAt: number, grantId: string | null): Promise<string>;
  resolveOpaque(owner: string, secret: string, now: number): Promise<string | null>;
  revokeOpaque(owner: string, secret: string): Promise<boolean>;
  holdRequest(userId: string, request: HeldRequest): Promise<string>;
  takeHeldRequest(userId: string, id: string, now: number): Promise<HeldRequest | null>;
}

export function createSessionStore(ns: DurableObjectNamespace<UserSessions>): SessionStore {
  // The object is named by the user id: the session token's `sub` routes to it with no lookup.
  const stub = (userId: string) => ns.get(ns.idFromName(userId));
  const call = <T>(run: () => Promise<T>) => failClosed('the session store', run);
  return {
    create: (input) => call(() => stub(input.userId).create(input)),
    refresh: (userId, sid, secret, now) => call(() => stub(userId).refresh(sid, secret, now)),
    get: (userId, sid, now) => call(() => stub(userId).get(sid, now)),
    list: (userId, now) => call(() => stub(userId).list(now)),
    revoke: (userId, sid) => call(() => stub(userId).revoke(sid)),
    revokeAll: (userId, exceptSid) => call(() => stub(userId).revokeAll(exceptSid)),
    issueCode: (userId, input) => call(() => stub(userId).issueCode(input)),
    // RPC stubs distribute union results awkwardly; the value crossing is exactly the union.
    redeemCode: (userId, input) => call(() => stub(userId).redeemCode(input) as unknown as Promise<CodeRedemption>),
    createRefreshFamily: (userId, grant, policy, now) => call(() => stub(userId).createRefreshFamily(grant, policy, now)),
    rotateRefresh: (userId, input) => call(() => stub(userId).rotateRefresh(input) as unknown as Promise<RefreshRotation>),
    inspectRefresh: (userId, familyId, secret, now) => call(() => stub(userId).inspectRefresh(familyId, secret, now)),
    revokeRefreshFamily: (userId, familyId) => call(() => stub(userId).revokeRefreshFamily(familyId)),
    storeOpaque: (owner, jwt, expiresAt, grantId) => call(() => stub(owner).storeOpaque(jwt, expiresAt, grantId)),
    resolveOpaque: (owner, secret, now) => call(() => stub(owner).resolveOpaque(secret, now)),
    revokeOpaque: (owner, secret) => call(() => stub(owner).revokeOpaque(secret)),
    holdRequest: (userId, request) => call(() => stub(userId).holdRequest(request)),
    takeHeldRequest: (userId, id, now) => call(() => stub(userId).takeHeldRequest(id, now)),
  };
}
