import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { clientsCli, listenOnFreePort, signUpVerified, startGatehouse, uniqueIp } from './harness';

/**
 * Webhooks end to end: `wrangler dev` with its local queue (producer and consumer in the worker,
 * as in production), an operator's robot managing endpoints through the admin API, and a real
 * receiver — a Node http server that verifies every delivery with the standardwebhooks library,
 * as an integration would, and dedupes by webhook-id.
 */

const ADMIN_AUDIENCE = 'urn:gatehouse:admin';
const PASSWORD = 'correct horse battery staple 42';

interface Delivery {
  path: string;
  id: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** The payload, when one of the path's secrets verified it. */
  verified: { type: string; data: { user_id: string } } | null;
}

const deliveries: Delivery[] = [];
/** Per path: the secrets it verifies with, and how many requests it fails (500) before it answers 204. */
const routes = new Map<string, { secrets: string[]; failFirst: number; seen: number }>();
let receiver: Server;
let receiverBase: string;
/** A receiver that takes the connection and never answers. */
let hanging: Server;
let hangingBase: string;
const hung: number[] = [];
let gatehouse: Awaited<ReturnType<typeof startGatehouse>>;
let token: string;

function verify(secrets: string[], body: string, headers: IncomingHttpHeaders) {
  for (const s of secrets) {
    try {
      return new Webhook(s).verify(body, headers as Record<string, string>) as Delivery['verified'];
    } catch {}
  }
  return null;
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const route = routes.get(req.url ?? '') ?? { secrets: [], failFirst: 0, seen: 0 };
      route.seen++;
      const verified = verify(route.secrets, body, req.headers);
      deliveries.push({ path: req.url ?? '', id: String(req.headers['webhook-id']), headers: req.headers, body, at: Date.now(), verified });
      res.statusCode = !verified ? 401 : route.seen <= route.failFirst ? 500 : 204;
      res.end();
    });
  });
  receiverBase = `http://127.0.0.1:${await listenOnFreePort(receiver)}`;
  hanging = createServer(() => void hung.push(Date.now()));
  hangingBase = `http://127.0.0.1:${await listenOnFreePort(hanging)}`;
  gatehouse = await startGatehouse({ WEBHOOK_BACKOFF_BASE: '1', WEBHOOK_MAX_ATTEMPTS: '4' });
  const robot = clientsCli([
    'create',
    '--name',
    'Ops robot',
    '--grant',
    'client_credentials',
    '--resource',
    `${ADMIN_AUDIENCE}=admin:webhooks:read,admin:webhooks:write,admin:users:read`,
    '--persist-to',
    gatehouse.persistTo,
  ]);
  expect(robot.code, robot.stderr).toBe(0);
  const { client_id, client_secret } = JSON.parse(robot.stdout) as { client_id: string; client_secret: string };
  const res = await fetch(`${gatehouse.base}/auth/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${client_id}:${client_secret}`)}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: ADMIN_AUDIENCE }),
  });
  const body = (await res.json()) as { access_token: string };
  expect(res.status, JSON.stringify(body)).toBe(200);
  token = body.access_token;
});

afterAll(async () => {
  await gatehouse?.stop();
  receiver?.close();
  hanging?.closeAllConnections();
  hanging?.close();
});

async function adminCall(method: string, path: string, body?: unknown) {
  const res = await fetch(`${gatehouse.base}/auth/admin/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** An endpoint at `path` of the receiver for user.signed_in, trusted with its secret. */
async function endpointAt(path: string, failFirst = 0, base = receiverBase) {
  const created = await adminCall('POST', '/webhooks', { url: `${base}${path}`, event_types: ['user.signed_in'] });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  routes.set(path, { secrets: [created.body.secret as string], failFirst, seen: 0 });
  return { id: created.body.id as string, secret: created.body.secret as string };
}

async function newUser() {
  const email = `hook-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}@example.com`;
  await signUpVerified(gatehouse.base, email, PASSWORD);
  return email;
}

/** Signs in through the API; returns the user's id and how long the answer took. */
async function signIn(email: string) {
  const started = performance.now();
  const res = await fetch(`${gatehouse.base}/auth/api/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'cf-connecting-ip': uniqueIp() },
    body: JSON.stringify({ email, password: PASSWORD }),
    signal: AbortSignal.timeout(15_000),
  });
  const ms = performance.now() - started;
  const body = (await res.json()) as { user: { id: string } };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return { userId: body.user.id, ms };
}

async function until(check: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const at = (path: string, userId: string) =>
  deliveries.filter((d) => d.path === path && (JSON.parse(d.body) as { data: { user_id: string } }).data.user_id === userId);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

describe('webhooks under wrangler dev', () => {
  it('a receiver that is down never delays a sign-in', async () => {
    const email = await newUser();
    // Without any endpoint: nothing to fan out.
    const without: number[] = [];
    for (let i = 0; i < 5; i++) without.push((await signIn(email)).ms);
    // With an endpoint whose receiver takes the connection and never answers (up to the 10 s deadline).
    const endpoint = await endpointAt('/hang', 0, hangingBase);
    const withHanging: number[] = [];
    for (let i = 0; i < 5; i++) withHanging.push((await signIn(email)).ms);
    await until(() => hung.length > 0, 15_000, 'a delivery to the hanging receiver');
    console.log(JSON.stringify({ signInMedianMs: { withoutEndpoints: median(without), withHangingReceiver: median(withHanging) } }));
    expect(median(withHanging)).toBeLessThan(Math.max(3 * median(without), median(without) + 500));
    for (const ms of withHanging) expect(ms).toBeLessThan(5_000);
    expect((await adminCall('DELETE', `/webhooks/${endpoint.id}`)).status).toBe(204);
  });

  it('delivers a sign-in that the receiver verifies with the standard library; a captured delivery replayed later is rejected by it', async () => {
    const endpoint = await endpointAt('/ok');
    const email = await newUser();
    const { userId } = await signIn(email);
    await until(() => at('/ok', userId).length > 0, 20_000, 'the delivery');
    const [got] = at('/ok', userId);
    expect(got!.verified).toMatchObject({ type: 'user.signed_in', data: { user_id: userId } });
    // Someone who captured it sends it again six minutes later: the timestamp is too old.
    vi.useFakeTimers({ now: Date.now() + 6 * 60_000, toFake: ['Date'] });
    try {
      expect(() => new Webhook(endpoint.secret).verify(got!.body, got!.headers as Record<string, string>)).toThrow(/too old/);
    } finally {
      vi.useRealTimers();
    }
    // Changed in flight, it verifies with no secret.
    expect(verify([endpoint.secret], got!.body.replace(userId, 'usr_someone_else'), got!.headers)).toBeNull();
    await adminCall('DELETE', `/webhooks/${endpoint.id}`);
  });

  it('a receiver that fails twice, then succeeds, gets the event exactly once after the retries', async () => {
    const endpoint = await endpointAt('/flaky', 2);
    const email = await newUser();
    const { userId } = await signIn(email);
    await until(() => at('/flaky', userId).length >= 3, 30_000, 'three attempts');
    await new Promise((r) => setTimeout(r, 3_000));
    const attempts = at('/flaky', userId);
    expect(attempts).toHaveLength(3);
    expect(attempts.every((a) => a.verified)).toBe(true);
    // What the receiver accepted (2xx), deduped by webhook-id: one event.
    expect(new Set(attempts.slice(2).map((a) => a.id)).size).toBe(1);
    expect(new Set(attempts.map((a) => a.id))).toEqual(new Set([attempts[0]!.id]));
    const listed = await adminCall('GET', `/webhooks/${endpoint.id}/deliveries`);
    expect(listed.body.items).toEqual([expect.objectContaining({ status: 'succeeded', attempts: 3, last_status: 204 })]);
    // An operator's replay: a fresh timestamp (the receiver accepts it), the same webhook-id (it can drop it).
    const deliveryId = (listed.body.items as { id: string }[])[0]!.id;
    expect((await adminCall('POST', `/webhooks/${endpoint.id}/deliveries/${deliveryId}/replay`)).status).toBe(202);
    await until(() => at('/flaky', userId).length === 4, 20_000, 'the replay');
    const replay = at('/flaky', userId)[3]!;
    expect(replay.verified).not.toBeNull();
    expect(replay.id).toBe(attempts[0]!.id);
    expect(Number(replay.headers['webhook-timestamp'])).toBeGreaterThanOrEqual(Number(attempts[2]!.headers['webhook-timestamp']));
    await adminCall('DELETE', `/webhooks/${endpoint.id}`);
  });

  it('after a secret rotation, a receiver that still has only the old secret verifies, and so does one with only the new', async () => {
    const endpoint = await endpointAt('/rotating');
    const rotated = await adminCall('POST', `/webhooks/${endpoint.id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const email = await newUser();
    const { userId } = await signIn(email);
    await until(() => at('/rotating', userId).length > 0, 20_000, 'the delivery');
    const [got] = at('/rotating', userId);
    expect(verify([endpoint.secret], got!.body, got!.headers)).not.toBeNull();
    expect(verify([rotated.body.secret as string], got!.body, got!.headers)).not.toBeNull();
    expect(verify(['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'], got!.body, got!.headers)).toBeNull();
    await adminCall('DELETE', `/webhooks/${endpoint.id}`);
  });
});
