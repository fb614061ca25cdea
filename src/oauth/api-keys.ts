import * as z from 'zod';
import type { ApiKeyRow } from '../db/schema';
import { base64url, randomToken, sha256 } from '../lib/crypto';
import { displayText } from '../lib/display-text';
import { ADMIN_RESOURCE, scopesAt, type ApiResource } from './api-resources';

/**
 * API keys: `gk_<id>_<secret><check>`. The id (16 base32 characters, 80 bits) is the key's public
 * name and visible prefix (`gk_<id>`), the secret 256 random bits of which only a SHA-256 is
 * stored, and the check a CRC-32 of everything before it, so a mistyped or truncated key is refused
 * without a lookup and secret scanners can recognise a real one.
 */
const KEY = /^gk_([a-z2-7]{16})_([A-Za-z0-9_-]{43})([A-Za-z0-9_-]{6})$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** Whether a header value is meant as a Gatehouse API key (well-formed or not): never for an origin's eyes. */
export const looksLikeApiKey = (value: string | null | undefined) => value?.trimStart().startsWith('gk_') ?? false;

const KEY_ANYWHERE = /gk_[a-z2-7]{16}_[A-Za-z0-9_-]{49}/g;

/**
 * Whether `text` holds a real Gatehouse API key anywhere (its check matches, so nothing else is
 * mistaken for one): in a list of values, another header, a URL.
 */
export function containsApiKey(text: string): boolean {
  if (!text.includes('gk_')) return false;
  for (const m of text.matchAll(KEY_ANYWHERE)) if (parseApiKey(m[0])) return true;
  return false;
}

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function checkOf(text: string): string {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8);
  crc = (crc ^ 0xffffffff) >>> 0;
  return base64url(new Uint8Array([crc >>> 24, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff])).slice(0, 6);
}

/** The id and secret of a well-formed key whose check matches; null for anything else. */
export function parseApiKey(key: string): { id: string; secret: string } | null {
  const m = KEY.exec(key);
  if (!m) return null;
  const [, id, secret, check] = m as unknown as [string, string, string, string];
  return checkOf(`gk_${id}_${secret}`) === check ? { id, secret } : null;
}

/** The key for an id and a secret, its check appended. */
export function formatApiKey(id: string, secret: string): string {
  const body = `gk_${id}_${secret}`;
  return `${body}${checkOf(body)}`;
}

function newKey(): { id: string; secret: string; key: string } {
  const id = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => ID_ALPHABET[b & 31]).join('');
  const secret = randomToken(32);
  return { id, secret, key: formatApiKey(id, secret) };
}

/** What an operator (or, later, the admin API) gives to issue a key. */
export const apiKeyInput = z
  .object({
    name: displayText('name', 100),
    scopes: z.array(z.string().min(1).max(100)).max(100).default([]),
    /** Milliseconds since the epoch; null: until revoked. */
    expiresAt: z.number().int().positive().nullable().default(null),
  })
  .strict();

export type ApiKeyInput = z.input<typeof apiKeyInput>;

/** Who a key acts as: a user, or a client acting for itself. */
export type ApiKeyOwner =
  | { kind: 'user'; userId: string }
  | {
      kind: 'client';
      client: {
        clientId: string;
        isPublic: boolean;
        grantTypes: readonly string[];
        resources: readonly string[];
        resourceScopes: Readonly<Record<string, readonly string[]>>;
      };
    };

/**
 * A new key for `resource`, owned by a user or a client, with some of the API's scopes — for a
 * client, only scopes it was granted at that API. Returns the row to store and the key, which is
 * shown this once. Throws ZodError naming the field.
 */
export async function buildApiKey(
  input: ApiKeyInput,
  owner: ApiKeyOwner,
  resource: ApiResource,
  now: number,
): Promise<{ row: ApiKeyRow; key: string }> {
  const k = apiKeyInput
    .superRefine((v, ctx) => {
      const allowed =
        owner.kind === 'client'
          ? owner.client.resources.includes(resource.identifier)
            ? scopesAt(owner.client, resource)
            : null
          : resource.scopes.map((s) => s.name);
      // A key acts as its client acting for itself: only a client that may do so (confidential, client_credentials).
      if (owner.kind === 'client' && (owner.client.isPublic || !owner.client.grantTypes.includes('client_credentials')))
        ctx.addIssue({
          code: 'custom',
          path: ['client'],
          message: 'only a confidential client with the client_credentials grant may own a key',
        });
      // The admin API takes access tokens only (short-lived, revocable, checked for scope and role at each call).
      if (resource.identifier === ADMIN_RESOURCE)
        ctx.addIssue({ code: 'custom', path: ['resource'], message: 'the admin API takes access tokens, not API keys' });
      else if (allowed === null)
        ctx.addIssue({ code: 'custom', path: ['resource'], message: 'the client may not ask tokens for this API' });
      v.scopes.forEach((s, i) => {
        if (allowed && !allowed.includes(s)) {
          const problem = `is not ${owner.kind === 'client' ? "one of this client's scopes" : 'a scope'} of this API`;
          ctx.addIssue({
            code: 'custom',
            path: ['scopes', i],
            message: `${s} ${problem.replace('this API', resource.identifier)}`,
            params: { problem },
          });
        }
      });
      if (v.expiresAt !== null && v.expiresAt <= now)
        ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'must be in the future' });
    })
    .parse(input);
  const { id, secret, key } = newKey();
  return {
    key,
    row: {
      id,
      secretHash: await sha256(secret),
      name: k.name,
      userId: owner.kind === 'user' ? owner.userId : null,
      clientId: owner.kind === 'client' ? owner.client.clientId : null,
      resource: resource.identifier,
      scopes: JSON.stringify([...new Set(k.scopes)]),
      expiresAt: k.expiresAt,
      lastUsedAt: null,
      revokedAt: null,
      createdAt: now,
    },
  };
}

/** A key's id from what an operator gives: the id, its prefix `gk_<id>`, or — pasted by mistake — the whole key (only its id goes further). */
export function apiKeyIdOf(given: string): string | null {
  const text = given.trim();
  return parseApiKey(text)?.id ?? /^(?:gk_)?([a-z2-7]{16})$/.exec(text)?.[1] ?? null;
}

/** The public description of a key: never its secret or hash. */
export const describeApiKey = (r: ApiKeyRow) => ({
  id: r.id,
  prefix: `gk_${r.id}`,
  name: r.name,
  owner: r.userId ? { user_id: r.userId } : { client_id: r.clientId },
  resource: r.resource,
  scopes: JSON.parse(r.scopes) as string[],
  created_at: r.createdAt,
  expires_at: r.expiresAt,
  last_used_at: r.lastUsedAt,
  revoked_at: r.revokedAt,
});
