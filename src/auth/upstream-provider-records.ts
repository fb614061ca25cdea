import { eq } from 'drizzle-orm';
import type { Database } from '../db/client';
import { clientProviders, identityProviders } from '../db/schema';
import { deepFreeze, LruCache } from '../lib/lru';
import { providerFromRow, type UpstreamProvider } from './upstream-providers';

/** How long an isolate keeps provider records (docs/authentication.md "Upstream providers"). */
export const PROVIDER_CACHE_TTL_MS = 30_000;
const cache = new LruCache<string, UpstreamProvider[]>(1, 'providers');

/** Every provider, from the isolate's cache while fresh (30 s), else from D1. */
export async function allProviders(db: Database, now: number): Promise<UpstreamProvider[]> {
  const hit = cache.get('all', now);
  if (hit) return hit;
  const rows = await db.select().from(identityProviders).all();
  const providers = deepFreeze(rows.map(providerFromRow).sort((a, b) => a.displayName.localeCompare(b.displayName)));
  cache.set('all', providers, now + PROVIDER_CACHE_TTL_MS);
  return providers;
}

/** Drops the cached provider list: after Gatehouse itself changed one. */
export function forgetProviders(): void {
  cache.delete('all');
}

/** An enabled provider by id, or undefined. */
export async function findProvider(db: Database, id: string, now: number): Promise<UpstreamProvider | undefined> {
  return (await allProviders(db, now)).find((p) => p.id === id && p.enabled);
}

/**
 * The buttons a sign-in page shows: for a client's sign-in, the enabled providers it lists; for a
 * sign-in to Gatehouse itself (no client), every enabled provider.
 */
export async function providersFor(db: Database, clientId: string | null, now: number): Promise<UpstreamProvider[]> {
  const enabled = (await allProviders(db, now)).filter((p) => p.enabled);
  if (clientId === null) return enabled;
  const listed = await db
    .select({ id: clientProviders.providerId })
    .from(clientProviders)
    .where(eq(clientProviders.clientId, clientId))
    .all();
  return enabled.filter((p) => listed.some((l) => l.id === p.id));
}

/** The client a sign-in is for, when it continues an authorization request (`/auth/authorize?…client_id=…`). */
export function clientOfReturnTo(returnTo: string | null | undefined): string | null {
  if (!returnTo?.startsWith('/auth/authorize?')) return null;
  return new URLSearchParams(returnTo.slice(returnTo.indexOf('?') + 1)).get('client_id');
}

/** The buttons for a sign-in that will go on to `returnTo`. */
export async function signInButtons(db: Database, returnTo: string | null | undefined, now: number) {
  return (await providersFor(db, clientOfReturnTo(returnTo), now)).map((p) => ({
    id: p.id,
    displayName: p.displayName,
    iconUrl: p.iconUrl,
  }));
}
