import type { Deps } from '../deps';
import { decodeBase64urlText, hmac, timingSafeEqualString } from '../lib/crypto';
import { GatehouseError } from '../lib/errors';

/**
 * Page cursors: where the next page starts (the last item's sort key) and what it lists (a
 * fingerprint of the filters), signed with a key derived from AUTH_SECRET. A cursor that was
 * altered, made up, or used with other filters is a 400 naming `cursor` — never a page of something
 * else, and never a query with a key the caller chose.
 */
export async function encodeCursor(deps: Deps, list: string, filters: unknown, after: readonly (string | number)[]): Promise<string> {
  const body = btoa(JSON.stringify({ l: list, f: JSON.stringify(filters), a: after }))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
  return `${body}.${await hmac(deps.keys.cursor, body)}`;
}

/** The sort key a cursor starts after; undefined for no cursor. */
export async function decodeCursor(
  deps: Deps,
  list: string,
  filters: unknown,
  cursor: string | undefined,
): Promise<(string | number)[] | undefined> {
  if (cursor === undefined) return undefined;
  const bad = () => new GatehouseError('invalid_request', 'cursor is not one this list gave, or its filters changed.', { field: 'cursor' });
  const [body, mac, extra] = cursor.split('.');
  if (!body || !mac || extra !== undefined) throw bad();
  if (!timingSafeEqualString(mac, await hmac(deps.keys.cursor, body))) throw bad();
  const text = decodeBase64urlText(body);
  if (!text) throw bad();
  const parsed = JSON.parse(text) as { l?: unknown; f?: unknown; a?: unknown };
  if (parsed.l !== list || parsed.f !== JSON.stringify(filters) || !Array.isArray(parsed.a)) throw bad();
  return parsed.a as (string | number)[];
}
