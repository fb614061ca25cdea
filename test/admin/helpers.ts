import { Validator } from '@cfworker/json-schema';
import { env } from 'cloudflare:workers';
import { expect } from 'vitest';
import { ADMIN_AUDIENCE } from '../../src/admin/operations';
import { createDb } from '../../src/db/client';
import { userRoles } from '../../src/db/schema';
import { call, createVerifiedUser, signIn } from '../helpers';
import { basic, getCode, registerClient, REDIRECT, tokenRequest } from '../oauth/helpers';

/**
 * The admin API as its callers see it: a token from Gatehouse's own token endpoint (a machine
 * client, or an admin user through the code flow), and every call checked against the OpenAPI
 * document the worker serves — the path and method must be in it, and every answer must match the
 * schema it gives for that status. A test cannot pass against an API the document does not describe.
 */

export const BASE = '/auth/admin/v1';

/** A machine client granted these admin scopes, and a token for them. */
export async function adminClient(scopes: string[], ask: string[] = scopes) {
  const client = await registerClient({
    name: 'Ops robot',
    redirectUris: [],
    grantTypes: ['client_credentials'],
    scopes: [],
    resources: [{ resource: ADMIN_AUDIENCE, scopes }],
  });
  const res = await tokenRequest(
    { grant_type: 'client_credentials', resource: ADMIN_AUDIENCE, ...(ask.length ? { scope: ask.join(' ') } : {}) },
    basic(client.clientId, client.clientSecret),
  );
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { ...client, token: body.access_token! };
}

/** A user (an admin, unless `admin: false`) and their access token for the admin API with these scopes, through the code flow. */
export async function adminUser(scopes: string[], o: { admin?: boolean } = {}) {
  const client = await registerClient({ resources: [{ resource: ADMIN_AUDIENCE, scopes }], firstParty: true });
  const user = await createVerifiedUser();
  if (o.admin !== false) await createDb(env.DB).insert(userRoles).values({ userId: user.userId, role: 'admin' });
  const { cookie } = await signIn(user.email);
  const { code, verifier } = await getCode(client.clientId, cookie, { resource: ADMIN_AUDIENCE, scope: `openid ${scopes.join(' ')}` });
  const res = await tokenRequest(
    { grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, resource: ADMIN_AUDIENCE },
    basic(client.clientId, client.clientSecret),
  );
  const body = (await res.json()) as { access_token?: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { ...user, clientId: client.clientId, token: body.access_token! };
}

type Json = Record<string, unknown>;
let documentPromise: Promise<Json> | undefined;

/** The OpenAPI document the worker serves. */
export function servedDocument(): Promise<Json> {
  documentPromise ??= call(`${BASE}/openapi.json`).then(async (res) => {
    expect(res.status).toBe(200);
    return (await res.json()) as Json;
  });
  return documentPromise;
}

/** The document's operation for a concrete path (`/users/abc` matches `/users/{id}`). */
async function operationFor(method: string, path: string): Promise<Json | undefined> {
  const doc = await servedDocument();
  const paths = doc.paths as Record<string, Record<string, Json>>;
  const bare = path.split('?')[0]!;
  for (const [template, ops] of Object.entries(paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(bare)) return ops[method.toLowerCase()];
  }
  return undefined;
}

/**
 * Calls the admin API (through the real worker) and checks the answer against the served
 * document: a JSON answer matches the schema of its status (problem+json for errors). Returns the
 * status, headers and parsed body.
 */
export async function admin(
  token: string | null,
  method: string,
  path: string,
  body?: unknown,
  o: { headers?: Record<string, string>; raw?: string; app?: typeof call } = {},
) {
  const op = await operationFor(method, path);
  expect(op, `${method} ${path} is not in the served OpenAPI document`).toBeDefined();
  const headers: Record<string, string> = { ...o.headers };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined || o.raw !== undefined) headers['content-type'] ??= 'application/json';
  const res = await (o.app ?? call)(`${BASE}${path}`, {
    method,
    headers,
    body: o.raw ?? (body === undefined ? undefined : JSON.stringify(body)),
  });
  const text = await res.text();
  const type = (res.headers.get('content-type') ?? '').split(';')[0];
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  const responses = op!.responses as Record<string, Json>;
  const declared = responses[String(res.status)];
  expect(declared, `${method} ${path} answered ${res.status}, which the document does not declare: ${text.slice(0, 300)}`).toBeDefined();
  const content = declared!.content as Record<string, { schema: Json }> | undefined;
  if (res.status === 204) expect(text).toBe('');
  else {
    const schema = content?.[type ?? ''];
    expect(schema, `${method} ${path} ${res.status} answered ${type}, not what the document declares`).toBeDefined();
    const doc = await servedDocument();
    const validator = new Validator({ ...schema!.schema, components: doc.components } as never, '2020-12', false);
    const result = validator.validate(parsed);
    expect(result.valid, `${method} ${path} ${res.status} does not match its schema: ${JSON.stringify(result.errors.slice(0, 3))}`).toBe(
      true,
    );
  }
  return { status: res.status, headers: res.headers, body: parsed as Record<string, unknown> & { items?: Record<string, unknown>[] } };
}
