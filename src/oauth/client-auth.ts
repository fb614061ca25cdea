import { lte } from 'drizzle-orm';
import { createLocalJWKSet, errors, jwtVerify } from 'jose';
import { usedAssertions } from '../db/schema';
import type { Deps } from '../deps';
import { sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, oauthError } from '../lib/errors';
import { findClient, type Client } from './clients';

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

const invalidClient = (message = 'Client authentication failed.') => oauthError('invalid_client', message);

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function parseBasic(header: string | undefined): { clientId: string; secret: string } | null | undefined {
  if (!header) return undefined;
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header.trim());
  if (!m) return null;
  try {
    const decoded = atob(m[1]!);
    const at = decoded.indexOf(':');
    if (at < 0) return null;
    const form = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    return { clientId: form(decoded.slice(0, at)), secret: form(decoded.slice(at + 1)) };
  } catch {
    return null;
  }
}

/**
 * Authenticates the client calling a back-channel endpoint with exactly one method —
 * client_secret_basic, client_secret_post, private_key_jwt (RFC 7523) or none (public clients) —
 * and only the method the client registered. Failures are `invalid_client` (401).
 */
export async function authenticateClient(
  deps: Deps,
  req: { authorization: string | undefined; body: Record<string, string | undefined> },
  audiences: string[],
): Promise<Client> {
  const basic = parseBasic(req.authorization);
  if (basic === null) throw invalidClient('The Authorization header is not valid Basic credentials.');
  const presented = [
    basic ? 'basic' : null,
    req.body.client_secret !== undefined ? 'post' : null,
    req.body.client_assertion !== undefined ? 'jwt' : null,
  ].filter(Boolean);
  if (presented.length > 1) throw oauthError('invalid_request', 'Use exactly one client authentication method.');

  const clientId = basic?.clientId ?? req.body.client_id;
  if (basic && req.body.client_id !== undefined && req.body.client_id !== basic.clientId)
    throw oauthError('invalid_request', 'client_id does not match the authenticated client.');

  if (req.body.client_assertion !== undefined) return authenticateWithAssertion(deps, req.body, audiences);

  if (!clientId) throw invalidClient('Identify the client (client_id or HTTP Basic).');
  const client = await failClosed('the database', () => findClient(deps.db, clientId, deps.now()));
  if (!client) throw invalidClient();

  const method = basic ? 'client_secret_basic' : req.body.client_secret !== undefined ? 'client_secret_post' : 'none';
  if (method !== client.authMethod) throw invalidClient(`This client authenticates with ${client.authMethod}.`);
  if (method === 'none') return client;
  const secret = basic?.secret ?? req.body.client_secret!;
  if (!client.secretHash || !timingSafeEqualString(client.secretHash, await sha256(secret))) throw invalidClient();
  return client;
}

async function authenticateWithAssertion(deps: Deps, body: Record<string, string | undefined>, audiences: string[]): Promise<Client> {
  if (body.client_assertion_type !== JWT_BEARER_ASSERTION)
    throw oauthError('invalid_request', `client_assertion_type must be ${JWT_BEARER_ASSERTION}.`);
  const assertion = body.client_assertion!;
  let claimedId: unknown;
  try {
    claimedId = JSON.parse(atob(assertion.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).sub;
  } catch {
    throw invalidClient('The client assertion is not a JWT.');
  }
  if (typeof claimedId !== 'string') throw invalidClient('The client assertion has no sub.');
  if (body.client_id !== undefined && body.client_id !== claimedId) throw invalidClient('client_id does not match the assertion.');
  const client = await failClosed('the database', () => findClient(deps.db, claimedId, deps.now()));
  if (client?.authMethod !== 'private_key_jwt' || !client.jwks) throw invalidClient();

  const now = deps.now();
  let payload: Awaited<ReturnType<typeof jwtVerify>>['payload'];
  try {
    ({ payload } = await jwtVerify(assertion, createLocalJWKSet(client.jwks), {
      algorithms: ['ES256', 'RS256', 'PS256', 'EdDSA'],
      issuer: client.clientId,
      subject: client.clientId,
      audience: audiences,
      currentDate: new Date(now),
      maxTokenAge: '5m',
      requiredClaims: ['exp', 'jti', 'iat'],
    }));
  } catch (e) {
    if (e instanceof errors.JOSEError) throw invalidClient(`The client assertion was rejected (${e.code}).`);
    throw e;
  }
  // RFC 7523 §3: a jti is used once. The primary key makes the check-and-record atomic; a row whose
  // assertion has expired (awaiting the scheduled purge, src/db/retention.ts) is taken over.
  const key = await sha256(`${client.clientId}:${payload.jti}`);
  const recorded = await failClosed('the database', async () => {
    const rows = await deps.db
      .insert(usedAssertions)
      .values({ key, expiresAt: payload.exp! * 1000 })
      .onConflictDoUpdate({
        target: usedAssertions.key,
        set: { expiresAt: payload.exp! * 1000 },
        setWhere: lte(usedAssertions.expiresAt, now),
      })
      .returning({ key: usedAssertions.key });
    return rows.length === 1;
  });
  if (!recorded) throw invalidClient('The client assertion was already used.');
  return client;
}
