import { accountBlocked, failClosed } from '../lib/errors';
import type { CodeRedemption, Grant, RefreshRotation } from './grants';
import type { HeldRequest } from './held-requests';
import type { ConnectRedemption, CreateSessionInput, SessionRecord, UserSessions } from './user-sessions';

type Rpc<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (userId: string, ...args: A) => Promise<Awaited<R>> : never };
type Methods = Pick<
  UserSessions,
  | 'refresh'
  | 'get'
  | 'list'
  | 'revoke'
  | 'revokeAll'
  | 'revokeClient'
  | 'clientsWithGrants'
  | 'signOutFrom'
  | 'issueConnect'
  | 'holdAuthorization'
  | 'takeAuthorization'
  | 'issueCode'
  | 'createRefreshFamily'
  | 'inspectRefresh'
  | 'revokeRefreshFamily'
  | 'revokeAccessToken'
  | 'isTokenLive'
  | 'storeOpaque'
  | 'resolveOpaque'
  | 'revokeOpaque'
  | 'holdRequest'
  | 'peekHeldRequest'
  | 'takeHeldRequest'
  | 'block'
  | 'unblock'
  | 'forget'
  | 'isBlocked'
>;

/**
 * Typed access to a user's UserSessions object: every method takes the user id (the object's name)
 * first. Every failure becomes a 503 (fail closed).
 */
export interface SessionStore extends Rpc<Methods> {
  /** A new session; account_blocked (403) while the account is blocked or deleted. */
  create(input: CreateSessionInput): Promise<SessionRecord & { secret: string }>;
  redeemCode(userId: string, input: Parameters<UserSessions['redeemCode']>[0]): Promise<CodeRedemption>;
  rotateRefresh(userId: string, input: Parameters<UserSessions['rotateRefresh']>[0]): Promise<RefreshRotation>;
  redeemConnect(userId: string, input: Parameters<UserSessions['redeemConnect']>[0]): Promise<ConnectRedemption>;
}

const PASSTHROUGH: (keyof Methods)[] = [
  'refresh',
  'get',
  'list',
  'revoke',
  'revokeAll',
  'revokeClient',
  'clientsWithGrants',
  'signOutFrom',
  'issueConnect',
  'holdAuthorization',
  'takeAuthorization',
  'issueCode',
  'createRefreshFamily',
  'inspectRefresh',
  'revokeRefreshFamily',
  'revokeAccessToken',
  'isTokenLive',
  'storeOpaque',
  'resolveOpaque',
  'revokeOpaque',
  'holdRequest',
  'peekHeldRequest',
  'takeHeldRequest',
  'block',
  'unblock',
  'forget',
  'isBlocked',
];

export function createSessionStore(ns: DurableObjectNamespace<UserSessions>): SessionStore {
  // The object is named by the user id: the session token's `sub` routes to it with no lookup.
  const stub = (userId: string) => ns.get(ns.idFromName(userId)) as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const call = <T>(run: () => Promise<T>) => failClosed('the session store', run);
  const store: Record<string, unknown> = {
    create: async (input: CreateSessionInput) => {
      const created = await call(() => stub(input.userId).create!(input));
      if (!created) throw accountBlocked();
      return created;
    },
    // RPC stubs distribute union results awkwardly; the value crossing is exactly the union.
    redeemCode: (userId: string, input: unknown) => call(() => stub(userId).redeemCode!(input)),
    rotateRefresh: (userId: string, input: unknown) => call(() => stub(userId).rotateRefresh!(input)),
    redeemConnect: (userId: string, input: unknown) => call(() => stub(userId).redeemConnect!(input)),
  };
  for (const name of PASSTHROUGH) store[name] = (userId: string, ...args: unknown[]) => call(() => stub(userId)[name]!(...args));
  return store as unknown as SessionStore;
}

export type { Grant, HeldRequest };
