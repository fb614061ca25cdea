import { env } from 'cloudflare:workers';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { attemptDelivery, consumeWebhookBatch } from '../../src/admin/webhook-delivery';
import {
  dispatchAfterResponse,
  dispatchWaiting,
  forgetEnabledEndpoints,
  RETENTION_MS,
  sweepWebhooks,
  SWEEP_GRACE_MS,
} from '../../src/admin/webhook-dispatch';
import { SECRET_OVERLAP_MS } from '../../src/admin/webhook-endpoints';
import { depsFor } from '../../src/deps';
import { appWith, call, createVerifiedUser, failingD1, recordingD1, signIn } from '../helpers';
import { admin, adminClient } from './helpers';
import { type Receiver, receiver, until } from './webhook-receiver';

/**
 * Events from a change to a receiver, through the real pipeline: the outbox trigger, fan-out after
 * the response, the WEBHOOKS queue of wrangler.toml (Miniflare runs its consumer, the worker's own
 * `queue` handler, in this isolate), Standard Webhooks signatures checked by the receiver with the
 * standardwebhooks library. Attackers and accidents: a receiver that fails or redirects elsewhere,
 * an operator URL into a private network (checked again at delivery), a leaked old secret after a
 * rotation, two isolates fanning out the same event, a lost queue message.
 */

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  forgetEnabledEndpoints();
});

const RW = ['admin:webhooks:read', 'admin:webhooks:write', 'admin:users:read'];

async function endpointFor(hook: Receiver, eventTypes: string[] = ['*']) {
  const robot = await adminClient(RW);
  const created = await admin(robot.token, 'POST', '/webhooks', { url: hook.url(), event_types: eventTypes });
  expect(created.status).toBe(201);
  const id = created.body.id as string;
  cleanups.push(() => env.DB.prepare('DELETE FROM webhook_endpoints WHERE id = ?').bind(id).run());
  hook.trust(created.body.secret as string);
  cleanups.push(hook.install());
  return { id, token: robot.token, secret: created.body.secret as string };
}

const deliveriesOf = (endpointId: string) =>
  env.DB.prepare('SELECT * FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY created_at')
    .bind(endpointId)
    .all<{ id: string; event_id: number; status: string; attempts: number; last_status: number | null; last_error: string | null }>()
    .then((r) => r.results);

const endpointRow = (id: string) =>
  env.DB.prepare('SELECT enabled, disabled_reason, failures_in_a_row FROM webhook_endpoints WHERE id = ?')
    .bind(id)
    .first<{ enabled: number; disabled_reason: string | null; failures_in_a_row: number }>();

const forUser = (hook: Receiver, userId: string, type: string) =>
  hook.received.filter((r) => {
    const body = JSON.parse(r.body) as { type: string; data: { user_id: string } };
    return body.type === type && body.data.user_id === userId;
  });

/** An event and its pending delivery to `endpointId`, made by hand and not queued (the tests attempt it themselves). */
async function handMadeDelivery(endpointId: string, o: { at?: number; created?: number } = {}) {
  const eventId = 1_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
  const now = Date.now();
  const id = `dlv_test_${eventId}`;
  await env.DB.batch([
    env.DB.prepare(
      "INSERT INTO webhook_events (id, type, user_id, user, detail, created_at, dispatched_at) VALUES (?1, 'user.signed_in', NULL, NULL, ?2, ?3, ?3)",
    ).bind(eventId, JSON.stringify({ sid: 's1', amr: ['pwd'] }), o.created ?? now),
    env.DB.prepare(
      "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at) VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?5)",
    ).bind(id, eventId, endpointId, o.at ?? now, o.created ?? now),
  ]);
  return { id, eventId };
}

/** A queue that records what is sent to it. */
function recordingQueue() {
  const sent: { deliveryId: string }[] = [];
  const queue = {
    send: async (body: { deliveryId: string }) => void sent.push(body),
    sendBatch: async (messages: Iterable<{ body: { deliveryId: string } }>) => {
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue<{ deliveryId: string }>;
  return { sent, queue };
}

const baseDeps = () => depsFor(env);

describe('delivering an event', () => {
  it('POSTs the event to the endpoint, signed per Standard Webhooks, with the user and nothing private', async () => {
    const hook = receiver('signed');
    await endpointFor(hook, ['user.signed_in']);
    const user = await createVerifiedUser();
    const { body } = await signIn(user.email);
    await until(() => forUser(hook, user.userId, 'user.signed_in').length > 0, 15_000, 'the delivery');
    const [got] = forUser(hook, user.userId, 'user.signed_in');
    expect(got!.verified).toMatchObject({
      type: 'user.signed_in',
      version: 1,
      data: {
        user_id: user.userId,
        user: { id: user.userId, email: user.email, email_verified: true, blocked: false, roles: [] },
        actor: null,
        method: 'password',
        amr: ['pwd'],
        session_id: body.session.sid,
      },
    });
    expect(got!.id).toMatch(/^evt_[0-9a-z]+_[0-9a-z]+$/);
    expect(Math.abs(Number(got!.timestamp) - Date.now() / 1000)).toBeLessThan(30);
    expect(got!.headers['content-type']).toBe('application/json');
    expect(got!.signature).toMatch(/^v1,[A-Za-z0-9+/=]+$/);
    // Never the address or device the sign-in came from.
    expect(got!.body).not.toMatch(/ip|user_agent|2001:db8/i);
    // Only the types it asked for: the sign-up's user.created went nowhere.
    expect(forUser(hook, user.userId, 'user.created')).toEqual([]);
  });

  it('retries a failing receiver with backoff; the receiver gets the event once, with one webhook-id throughout', async () => {
    const hook = receiver('flaky');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    hook.answer([500, 503], 204);
    // Earlier deliveries failed: a success starts the count again.
    await env.DB.prepare('UPDATE webhook_endpoints SET failures_in_a_row = 4 WHERE id = ?').bind(endpoint.id).run();
    const user = await createVerifiedUser();
    await signIn(user.email);
    await until(async () => (await deliveriesOf(endpoint.id)).some((d) => d.status === 'succeeded'), 20_000, 'the third attempt');
    const attempts = forUser(hook, user.userId, 'user.signed_in');
    expect(attempts).toHaveLength(3);
    expect(new Set(attempts.map((a) => a.id)).size).toBe(1);
    expect(attempts.every((a) => a.verified)).toBe(true);
    // Backoff: 1 s after the first, then 2 s (WEBHOOK_BACKOFF_BASE=1 in tests).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(900);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(1900);
    const [delivery] = await deliveriesOf(endpoint.id);
    expect(delivery).toMatchObject({ status: 'succeeded', attempts: 3, last_status: 204 });
    expect(await endpointRow(endpoint.id)).toMatchObject({ enabled: 1, failures_in_a_row: 0 });
  });

  it('gives up after the last attempt, shows why, and turns off an endpoint failing for too long; the operator turns it on and replays', async () => {
    const hook = receiver('down');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    hook.answer([], 500);
    // Nine deliveries in a row failed before this one (WEBHOOK_DISABLE_AFTER is 10).
    await env.DB.prepare('UPDATE webhook_endpoints SET failures_in_a_row = 9 WHERE id = ?').bind(endpoint.id).run();
    const user = await createVerifiedUser();
    await signIn(user.email);
    await until(async () => (await deliveriesOf(endpoint.id)).some((d) => d.status === 'failed'), 20_000, 'the last attempt');
    expect(forUser(hook, user.userId, 'user.signed_in')).toHaveLength(3);
    const listed = await admin(endpoint.token, 'GET', `/webhooks/${endpoint.id}/deliveries?status=failed`);
    expect(listed.body.items).toEqual([
      expect.objectContaining({
        event_type: 'user.signed_in',
        status: 'failed',
        attempts: 3,
        last_status: 500,
        last_error: 'HTTP 500: status 500',
      }),
    ]);
    const off = await admin(endpoint.token, 'GET', `/webhooks/${endpoint.id}`);
    expect(off.body).toMatchObject({ enabled: false, failures_in_a_row: 10 });
    expect(off.body.disabled_reason).toMatch(/^Turned off after 10 deliveries in a row failed .*last: HTTP 500/);
    // While it is off nothing goes to it, and it cannot be replayed to.
    const deliveryId = (listed.body.items![0] as { id: string }).id;
    const refused = await admin(endpoint.token, 'POST', `/webhooks/${endpoint.id}/deliveries/${deliveryId}/replay`);
    expect(refused.status).toBe(409);
    // The operator fixes the receiver, turns the endpoint on, and replays: same webhook-id, fresh attempts.
    hook.answer([], 204);
    expect((await admin(endpoint.token, 'PATCH', `/webhooks/${endpoint.id}`, { enabled: true })).body).toMatchObject({ enabled: true });
    const replayed = await admin(endpoint.token, 'POST', `/webhooks/${endpoint.id}/deliveries/${deliveryId}/replay`);
    expect(replayed.status).toBe(202);
    expect(replayed.body).toMatchObject({ id: deliveryId, status: 'pending', attempts: 0 });
    await until(async () => (await deliveriesOf(endpoint.id))[0]!.status === 'succeeded', 15_000, 'the replay');
    const all = forUser(hook, user.userId, 'user.signed_in');
    expect(all).toHaveLength(4);
    expect(new Set(all.map((a) => a.id)).size).toBe(1);
    expect(await endpointRow(endpoint.id)).toMatchObject({ enabled: 1, failures_in_a_row: 0, disabled_reason: null });
    const audit = await env.DB.prepare(
      "SELECT actor FROM audit_events WHERE json_extract(detail, '$.action') = 'webhook_replayed' AND json_extract(detail, '$.endpointId') = ?",
    )
      .bind(endpoint.id)
      .all();
    expect(audit.results).toHaveLength(1);
  });

  it('replays an event the endpoint never got (it did not want that type then) — only to an endpoint that takes it', async () => {
    const hook = receiver('late');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const user = await createVerifiedUser();
    const created = await env.DB.prepare("SELECT id FROM webhook_events WHERE type = 'user.created' AND user_id = ?")
      .bind(user.userId)
      .first<{ id: number }>();
    expect(created).not.toBeNull();
    const wrongType = await admin(endpoint.token, 'POST', `/webhooks/${endpoint.id}/replay`, { event_id: created!.id });
    expect(wrongType.status).toBe(409);
    await admin(endpoint.token, 'PATCH', `/webhooks/${endpoint.id}`, { event_types: ['user.created', 'user.signed_in'] });
    const replayed = await admin(endpoint.token, 'POST', `/webhooks/${endpoint.id}/replay`, { event_id: created!.id });
    expect(replayed.status).toBe(202);
    await until(() => forUser(hook, user.userId, 'user.created').length === 1, 15_000, 'the replayed event');
    expect(forUser(hook, user.userId, 'user.created')[0]!.verified).toMatchObject({
      data: { source: 'sign_up', user: { id: user.userId } },
    });
    const missing = await admin(endpoint.token, 'POST', `/webhooks/${endpoint.id}/replay`, { event_id: 2 ** 40 });
    expect(missing.status).toBe(404);
  });

  it('never replays another endpoint’s delivery through this one', async () => {
    const a = await endpointFor(receiver('mine'), ['user.signed_in']);
    const b = await endpointFor(receiver('theirs'), ['user.signed_in']);
    const { id } = await handMadeDelivery(b.id);
    const res = await admin(a.token, 'POST', `/webhooks/${a.id}/deliveries/${id}/replay`);
    expect(res.status).toBe(404);
    expect(res.body.field).toBe('delivery_id');
  });

  it('does not follow a redirect: the receiver’s Location is not an instruction', async () => {
    const hook = receiver('redirects');
    const elsewhere = receiver('elsewhere');
    cleanups.push(elsewhere.install());
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    hook.answer([], () => new Response(null, { status: 307, headers: { location: elsewhere.url() } }));
    const { id } = await handMadeDelivery(endpoint.id);
    const outcome = await attemptDelivery(await baseDeps(), id);
    expect(outcome).toMatchObject({ kind: 'retry', error: 'HTTP 307' });
    expect(elsewhere.received).toEqual([]);
  });

  it('stops waiting for a receiver after the deadline and records it', async () => {
    const hook = receiver('slow');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    hook.answer([], (signal) => new Promise((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason))));
    const { id } = await handMadeDelivery(endpoint.id);
    vi.spyOn(AbortSignal, 'timeout').mockImplementation(() => {
      const c = new AbortController();
      setTimeout(() => c.abort(new DOMException('timed out', 'TimeoutError')), 50);
      return c.signal;
    });
    cleanups.push(() => vi.mocked(AbortSignal.timeout).mockRestore());
    const outcome = await attemptDelivery(await baseDeps(), id);
    expect(outcome).toMatchObject({ kind: 'retry', error: 'no answer within 10 s' });
    expect(await env.DB.prepare('SELECT last_status, last_error FROM webhook_deliveries WHERE id = ?').bind(id).first()).toEqual({
      last_status: null,
      last_error: 'no answer within 10 s',
    });
  });
});

describe('secret rotation', () => {
  it('signs with both secrets during the overlap (a receiver with either verifies), then with the new one only', async () => {
    const hook = receiver('rotating');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const rotated = await admin(endpoint.token, 'POST', `/webhooks/${endpoint.id}/rotate-secret`);
    const fresh = rotated.body.secret as string;
    hook.trust(endpoint.secret, fresh);
    const user = await createVerifiedUser();
    await signIn(user.email);
    await until(() => forUser(hook, user.userId, 'user.signed_in').length > 0, 15_000, 'the delivery');
    const [got] = forUser(hook, user.userId, 'user.signed_in');
    expect(got!.signature.split(' ')).toHaveLength(2);
    // A receiver that has only the old secret still verifies; so does one with only the new.
    expect(got!.verifiedWith).toEqual([0, 1]);
    // After the overlap, only the new secret signs: the old one (say, leaked) signs nothing any more.
    const { id } = await handMadeDelivery(endpoint.id, { at: Date.now() + SECRET_OVERLAP_MS + 60_000 });
    const later = Date.now() + SECRET_OVERLAP_MS + 60_000;
    const deps = await baseDeps();
    await attemptDelivery({ ...deps, now: () => later }, id);
    const last = hook.received.at(-1)!;
    expect(last.signature.split(' ')).toHaveLength(1);
    expect(last.signature).toBe(new Webhook(fresh).sign(last.id, new Date(Number(last.timestamp) * 1000), last.body));
    expect(last.signature).not.toBe(new Webhook(endpoint.secret).sign(last.id, new Date(Number(last.timestamp) * 1000), last.body));
  });
});

describe('SSRF at delivery', () => {
  it('refuses to send to a URL that production forbids, even one saved when the rules allowed it', async () => {
    const robot = await adminClient(RW);
    // Saved in test (http and IP literals allowed here), delivered in production.
    const created = await admin(robot.token, 'POST', '/webhooks', {
      url: 'http://169.254.169.254/latest/meta-data',
      event_types: ['user.signed_in'],
    });
    const endpointId = created.body.id as string;
    cleanups.push(() => env.DB.prepare('DELETE FROM webhook_endpoints WHERE id = ?').bind(endpointId).run());
    const { id } = await handMadeDelivery(endpointId);
    const deps = await baseDeps();
    const fetch = vi.fn(deps.fetch);
    const outcome = await attemptDelivery({ ...deps, fetch, config: { ...deps.config, environment: 'production' } }, id);
    expect(outcome).toEqual({ kind: 'failed', error: 'url must be https' });
    expect(fetch).not.toHaveBeenCalled();
    await env.DB.prepare("UPDATE webhook_endpoints SET url = 'https://[::ffff:a9fe:a9fe]/x' WHERE id = ?").bind(endpointId).run();
    const again = await handMadeDelivery(endpointId);
    expect(await attemptDelivery({ ...deps, fetch, config: { ...deps.config, environment: 'production' } }, again.id)).toMatchObject({
      kind: 'failed',
      error: expect.stringContaining('IPv4-mapped link-local'),
    });
    expect(fetch).not.toHaveBeenCalled();
  });
});

describe('fan-out and the sweep', () => {
  it('fans an event out once, however many isolates try at the same moment', async () => {
    const hook = receiver('race');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const deps = await baseDeps();
    const queues = [recordingQueue(), recordingQueue(), recordingQueue()];
    const ids: number[] = [];
    for (let i = 0; i < 5; i++) {
      const id = 2_000_000_000 + Math.floor(Math.random() * 1_000_000_000);
      ids.push(id);
      await env.DB.prepare("INSERT INTO webhook_events (id, type, created_at) VALUES (?, 'user.signed_in', ?)").bind(id, Date.now()).run();
    }
    await Promise.all(queues.map((q) => dispatchWaiting({ ...deps, webhooks: q.queue })));
    const made = await deliveriesOf(endpoint.id);
    const mine = made.filter((d) => ids.includes(d.event_id));
    // One delivery per event (or none here: another isolate's run took it, and sent it to the real queue).
    expect(new Set(mine.map((d) => d.event_id)).size).toBe(mine.length);
    const sent = queues.flatMap((q) => q.sent.map((s) => s.deliveryId)).filter((id) => mine.some((d) => d.id === id));
    expect(sent.sort()).toEqual([...new Set(sent)].sort());
    const waiting = await env.DB.prepare(
      `SELECT count(*) AS n FROM webhook_events WHERE dispatched_at IS NULL AND id IN (${ids.join(',')})`,
    ).first();
    expect(waiting).toEqual({ n: 0 });
  });

  it('re-sends a delivery whose message was lost, once per grace period, and never one whose endpoint is off', async () => {
    const hook = receiver('lost');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const deps = await baseDeps();
    const overdue = await handMadeDelivery(endpoint.id, { at: Date.now() - SWEEP_GRACE_MS - 1000 });
    const recent = await handMadeDelivery(endpoint.id, { at: Date.now() - 1000 });
    const q = recordingQueue();
    await sweepWebhooks({ ...deps, webhooks: q.queue });
    expect(q.sent.map((s) => s.deliveryId)).toContain(overdue.id);
    expect(q.sent.map((s) => s.deliveryId)).not.toContain(recent.id);
    const again = recordingQueue();
    await sweepWebhooks({ ...deps, webhooks: again.queue });
    expect(again.sent.map((s) => s.deliveryId)).not.toContain(overdue.id);
    // Sent by the sweep, it is attempted like any other.
    expect(await attemptDelivery(deps, overdue.id)).toEqual({ kind: 'succeeded', status: 204 });
    const off = await handMadeDelivery(endpoint.id, { at: Date.now() - SWEEP_GRACE_MS - 1000 });
    await env.DB.prepare('UPDATE webhook_endpoints SET enabled = 0 WHERE id = ?').bind(endpoint.id).run();
    const third = recordingQueue();
    await sweepWebhooks({ ...deps, webhooks: third.queue });
    expect(third.sent.map((s) => s.deliveryId)).not.toContain(off.id);
    expect(await attemptDelivery(deps, off.id)).toMatchObject({ kind: 'skipped' });
  });

  it('prunes deliveries and dispatched events past the retention, and keeps the recent', async () => {
    const hook = receiver('prune');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const old = await handMadeDelivery(endpoint.id, { created: Date.now() - RETENTION_MS - 60_000 });
    const fresh = await handMadeDelivery(endpoint.id);
    await sweepWebhooks({ ...(await baseDeps()), webhooks: recordingQueue().queue });
    const left = (await deliveriesOf(endpoint.id)).map((d) => d.id);
    expect(left).toContain(fresh.id);
    expect(left).not.toContain(old.id);
    expect(await env.DB.prepare('SELECT id FROM webhook_events WHERE id = ?').bind(old.eventId).first()).toBeNull();
    expect(await env.DB.prepare('SELECT id FROM webhook_events WHERE id = ?').bind(fresh.eventId).first()).not.toBeNull();
  });

  it('fans out after Gatehouse’s own requests, never on the gateway’s proxied path', async () => {
    const hook = receiver('paths');
    await endpointFor(hook, ['user.signed_in']);
    // Let the fan-out the requests above started finish (one run at a time per isolate).
    await dispatchAfterResponse(await baseDeps());
    const log: string[] = [];
    const q = recordingQueue();
    const app = appWith((deps) => ({ d1: recordingD1(deps.d1, log), webhooks: q.queue }));
    const proxied = await app('https://app.gatehouse.test/demo/public/hello');
    expect(proxied.status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(log.filter((s) => s.includes('webhook'))).toEqual([]);
    const own = await app('/auth/admin/v1/openapi.json');
    expect(own.status).toBe(200);
    await until(() => log.some((s) => s.includes('webhook')), 5_000, 'the fan-out after the answer');
  });
});

describe('the queue consumer', () => {
  const batchOf = (ids: string[]) => {
    const acked: string[] = [];
    const retried: { id: string; delaySeconds?: number }[] = [];
    const messages = ids.map((deliveryId, i) => ({
      id: `m${i}`,
      timestamp: new Date(),
      attempts: 1,
      body: { deliveryId },
      ack: () => acked.push(deliveryId),
      retry: (o?: { delaySeconds?: number }) => retried.push({ id: deliveryId, ...o }),
    }));
    return { batch: { queue: 'gatehouse-webhooks', messages } as unknown as MessageBatch, acked, retried };
  };

  it('retries a message it cannot process (D1 down) instead of losing it; the dead-letter consumer marks it failed for the operator', async () => {
    const hook = receiver('outage');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const { id } = await handMadeDelivery(endpoint.id);
    const deps = await baseDeps();
    const down = batchOf([id]);
    await consumeWebhookBatch({ ...deps, d1: failingD1(deps.d1) }, down.batch, false);
    expect(down.acked).toEqual([]);
    expect(down.retried).toEqual([{ id, delaySeconds: 1 }]);
    expect(hook.received).toEqual([]);
    const dead = batchOf([id]);
    await consumeWebhookBatch(deps, dead.batch, true);
    expect(dead.acked).toEqual([id]);
    const row = await env.DB.prepare('SELECT status, last_error FROM webhook_deliveries WHERE id = ?')
      .bind(id)
      .first<{ status: string; last_error: string }>();
    expect(row!.status).toBe('failed');
    expect(row!.last_error).toContain('dead-lettered');
  });

  it('sends a delivery once when two messages for it arrive at the same moment (a re-sent one and the original)', async () => {
    const hook = receiver('twice');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const { id } = await handMadeDelivery(endpoint.id);
    const deps = await baseDeps();
    const outcomes = await Promise.all([attemptDelivery(deps, id), attemptDelivery(deps, id), attemptDelivery(deps, id)]);
    expect(outcomes.filter((o) => o.kind === 'succeeded')).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'skipped')).toHaveLength(2);
    expect(hook.received).toHaveLength(1);
  });

  it('acknowledges a message that is not one of its own, and one for a delivery already made, without sending', async () => {
    const hook = receiver('junk');
    const endpoint = await endpointFor(hook, ['user.signed_in']);
    const { id } = await handMadeDelivery(endpoint.id);
    const deps = await baseDeps();
    expect(await attemptDelivery(deps, id)).toEqual({ kind: 'succeeded', status: 204 });
    const junk = batchOf([id]);
    (junk.batch.messages as unknown as { body: unknown }[]).push({ ...junk.batch.messages[0]!, body: { nope: 1 } });
    await consumeWebhookBatch(deps, junk.batch, false);
    expect(junk.retried).toEqual([]);
    expect(hook.received).toHaveLength(1);
  });
});

describe('user.sign_in_failed', () => {
  it('is sent once, when failed password sign-ins first lock a known account, with the count', async () => {
    const hook = receiver('locked');
    await endpointFor(hook, ['user.sign_in_failed']);
    const user = await createVerifiedUser();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await call('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: 'wrong password 123' } });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 5).every((s) => s === 401)).toBe(true);
    const locked = await env.DB.prepare("SELECT detail FROM audit_events WHERE type = 'sign_in_locked' AND user_id = ?")
      .bind(user.userId)
      .all();
    expect(locked.results).toEqual([{ detail: JSON.stringify({ failures: 5 }) }]);
    await until(() => forUser(hook, user.userId, 'user.sign_in_failed').length > 0, 15_000, 'the event');
    expect(forUser(hook, user.userId, 'user.sign_in_failed')[0]!.verified).toMatchObject({
      data: { failures: 5, user: { id: user.userId } },
    });
    // Past the lock, another failure (the sixth) is not another event.
    const later = appWith(() => ({ now: () => Date.now() + 3600_000 }));
    expect((await later('/auth/api/sign-in', { method: 'POST', json: { email: user.email, password: 'wrong password 123' } })).status).toBe(
      401,
    );
    const stillOnce = await env.DB.prepare("SELECT count(*) AS n FROM audit_events WHERE type = 'sign_in_locked' AND user_id = ?")
      .bind(user.userId)
      .first();
    expect(stillOnce).toEqual({ n: 1 });
    // An unknown address locks nothing anyone is told about.
    const stranger = `nobody-${Date.now()}@example.com`;
    for (let i = 0; i < 6; i++)
      await call('/auth/api/sign-in', { method: 'POST', json: { email: stranger, password: 'wrong password 123' } });
    const anyLocked = await env.DB.prepare(
      "SELECT count(*) AS n FROM audit_events WHERE type = 'sign_in_locked' AND user_id IS NULL",
    ).first();
    expect(anyLocked).toEqual({ n: 0 });
  });
});
