import { failClosed } from '../lib/errors';
import type { Handoff } from './handoff-object';

type Methods = Pick<Handoff, 'start' | 'view' | 'join' | 'decide' | 'redeem' | 'poll' | 'status'>;
type ByCode<T> = { [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (code: string, ...args: A) => Promise<Awaited<R>> : never };

const METHODS: (keyof Methods)[] = ['start', 'view', 'join', 'decide', 'redeem', 'poll', 'status'];

/**
 * Typed access to the Handoff objects, and the only module that reaches them: every method takes
 * the handoff's short code (the object's name) first, and every failure becomes a 503 (fail closed).
 */
export interface HandoffStore extends ByCode<Methods> {
  /** Hands a request (a WebSocket upgrade) to the handoff's object, which answers it. */
  fetch(code: string, request: Request): Promise<Response>;
}

export function createHandoffStore(ns: DurableObjectNamespace<Handoff>): HandoffStore {
  // The object is named by the code: a typed or scanned code reaches its handoff with no lookup.
  const stub = (code: string) => ns.get(ns.idFromName(`handoff:${code}`));
  // RPC stubs distribute union results awkwardly; the values crossing are exactly the methods' own.
  const rpc = (code: string) => stub(code) as unknown as Record<keyof Methods, (...args: unknown[]) => Promise<unknown>>;
  const store: Record<string, unknown> = { fetch: (code: string, request: Request) => stub(code).fetch(request) };
  for (const name of METHODS)
    store[name] = (code: string, ...args: unknown[]) => failClosed('the handoff store', () => rpc(code)[name](...args));
  return store as unknown as HandoffStore;
}
