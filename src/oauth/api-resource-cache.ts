import { eq } from 'drizzle-orm';
import type { Database } from '../db/client';
import { apiResources } from '../db/schema';
import { deepFreeze, LruCache } from '../lib/lru';
import { resourceFromRow, type ApiResource } from './api-resources';

/**
 * How long an isolate keeps an API record it read: the token endpoint then issues for a known API
 * without a D1 read. Changes made in D1 directly (the resources CLI) reach warm isolates within
 * this (docs/oidc.md "Records in the isolate").
 */
export const RESOURCE_CACHE_TTL_MS = 30_000;
const cache = new LruCache<string, ApiResource>(500, 'resources');

/** The registered API with this identifier, from the isolate's cache while fresh, else from D1. */
export async function findResource(db: Database, identifier: string, now: number): Promise<ApiResource | undefined> {
  const hit = cache.get(identifier, now);
  if (hit) return hit;
  const row = await db.select().from(apiResources).where(eq(apiResources.identifier, identifier)).get();
  if (!row) return undefined;
  const resource = deepFreeze(resourceFromRow(row));
  cache.set(identifier, resource, now + RESOURCE_CACHE_TTL_MS);
  return resource;
}

/** Drops an API's cached record: after Gatehouse itself changed or deleted it. */
export function forgetResource(identifier: string): void {
  cache.delete(identifier);
}
