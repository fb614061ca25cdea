import type { Deps } from '../deps';

/**
 * From the outbox to the queue. The trigger of migrations/0013 writes a webhook_events row in the
 * transaction of the change it reports; fan-out turns each waiting event into one delivery per
 * enabled endpoint that wants it and sends each new delivery's id to the WEBHOOKS queue. It runs
 * after the answer to Gatehouse's own requests (never on the gateway's path, and only while an
 * endpoint is enabled) and on the cron, which also re-sends deliveries whose message was lost and
 * prunes what is old. The delivery row is the durable state; a message only triggers an attempt.
 */

/** The cron of the webhook sweep (wrangler.toml [triggers]; not exported from src/index.ts, whose exports must be handlers). */
export const WEBHOOK_CRON = '* * * * *';
/** How long an isolate trusts its answer to "is any endpoint enabled?" (changes made here clear it at once). */
export const ENABLED_CACHE_MS = 30_000;
/** A pending delivery this long past its time has lost its message: the sweep sends another. */
export const SWEEP_GRACE_MS = 2 * 60_000;
/** Events and deliveries are kept this long after they were made, then pruned by the cron. */
export const RETENTION_MS = 30 * 24 * 3600_000;
/** Events claimed per fan-out round, and rounds per run (more wait for the next run). */
const EVENTS_PER_ROUND = 50;
const ROUNDS = 10;

let enabled: { until: number; value: Promise<boolean> } | undefined;

/** Forgets this isolate's answer to "is any endpoint enabled?" (after a change to endpoints). */
export function forgetEnabledEndpoints(): void {
  enabled = undefined;
}

function anyEndpointEnabled(deps: Deps): Promise<boolean> {
  const now = deps.now();
  if (!enabled || enabled.until <= now) {
    const value = deps.d1
      .prepare('SELECT 1 FROM webhook_endpoints WHERE enabled = 1 LIMIT 1')
      .first()
      .then((row) => row !== null);
    value.catch(() => forgetEnabledEndpoints());
    enabled = { until: now + ENABLED_CACHE_MS, value };
  }
  return enabled.value;
}

/** Sends delivery ids to the queue, 100 a message batch (the queue's limit). */
export async function enqueueDeliveries(deps: Deps, ids: readonly string[], delaySeconds = 0): Promise<void> {
  for (let i = 0; i < ids.length; i += 100)
    await deps.webhooks.sendBatch(ids.slice(i, i + 100).map((deliveryId) => ({ body: { deliveryId }, delaySeconds })));
}

// The claim and the fan-out commit together (a D1 batch is one transaction, and D1 runs one at a
// time): the INSERT makes the deliveries of the waiting events, the conditional UPDATE marks those
// same events dispatched, so another isolate's run finds none of them waiting. UNIQUE(event_id,
// endpoint_id) is the second lock. Nothing is ever marked dispatched without its deliveries.
const WAITING = 'SELECT id FROM webhook_events WHERE dispatched_at IS NULL ORDER BY id LIMIT ?2';
const FAN_OUT = `INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
  SELECT 'dlv_' || lower(hex(randomblob(12))), e.id, p.id, 'pending', 0, ?1, ?1
  FROM webhook_events e, webhook_endpoints p
  WHERE e.id IN (${WAITING}) AND p.enabled = 1
    AND EXISTS (SELECT 1 FROM json_each(p.event_types) t WHERE t.value = '*' OR t.value = e.type)
  ON CONFLICT (event_id, endpoint_id) DO NOTHING
  RETURNING id`;
const CLAIM = `UPDATE webhook_events SET dispatched_at = ?1 WHERE id IN (${WAITING}) AND dispatched_at IS NULL RETURNING id`;

/**
 * Fans the waiting events out into deliveries and queues them. A failure to queue leaves the
 * deliveries pending, due now: the sweep sends them. Returns how many events and deliveries.
 */
export async function dispatchWaiting(deps: Deps): Promise<{ events: number; deliveries: number }> {
  let events = 0;
  let deliveries = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const now = deps.now();
    const [made, claimed] = await deps.d1.batch<{ id: string | number }>([
      deps.d1.prepare(FAN_OUT).bind(now, EVENTS_PER_ROUND),
      deps.d1.prepare(CLAIM).bind(now, EVENTS_PER_ROUND),
    ]);
    const ids = made!.results.map((r) => String(r.id));
    events += claimed!.results.length;
    deliveries += ids.length;
    if (ids.length > 0) await enqueueDeliveries(deps, ids);
    if (claimed!.results.length < EVENTS_PER_ROUND) break;
  }
  return { events, deliveries };
}

let running: Promise<void> | undefined;
let again = false;

/**
 * After the answer to one of Gatehouse's own requests: fan out what it (or any request) left in the
 * outbox — only while an endpoint is enabled, and one run at a time per isolate (a request that
 * ends during a run asks for one more).
 */
export function dispatchAfterResponse(deps: Deps): Promise<void> {
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    try {
      do {
        again = false;
        if (!(await anyEndpointEnabled(deps))) return;
        const waiting = await deps.d1.prepare('SELECT 1 FROM webhook_events WHERE dispatched_at IS NULL LIMIT 1').first();
        if (waiting) await dispatchWaiting(deps);
      } while (again);
    } finally {
      running = undefined;
    }
  })();
  return running;
}

/**
 * Re-sends pending deliveries whose time passed SWEEP_GRACE_MS ago (their message was lost, the
 * consumer died mid-attempt, or their endpoint was just turned on again), marking them due now so
 * the next sweep waits again before sending another.
 */
export async function resendOverdue(deps: Deps): Promise<number> {
  const now = deps.now();
  const { results } = await deps.d1
    .prepare(
      `UPDATE webhook_deliveries SET next_attempt_at = ?1 WHERE id IN (
         SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints p ON p.id = d.endpoint_id
         WHERE d.status = 'pending' AND d.next_attempt_at <= ?2 AND p.enabled = 1 LIMIT 500)
       RETURNING id`,
    )
    .bind(now, now - SWEEP_GRACE_MS)
    .all<{ id: string }>();
  const ids = results.map((r) => r.id);
  await enqueueDeliveries(deps, ids);
  return ids.length;
}

/** Deletes deliveries made before RETENTION_MS, then dispatched events that have none left. */
export async function prune(deps: Deps): Promise<{ deliveries: number; events: number }> {
  const cutoff = deps.now() - RETENTION_MS;
  const [deliveries, events] = await deps.d1.batch([
    deps.d1
      .prepare('DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE created_at < ?1 LIMIT 1000)')
      .bind(cutoff),
    deps.d1
      .prepare(
        `DELETE FROM webhook_events WHERE id IN (SELECT e.id FROM webhook_events e WHERE e.dispatched_at < ?1
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id) LIMIT 1000)`,
      )
      .bind(cutoff),
  ]);
  return { deliveries: deliveries!.meta.changes, events: events!.meta.changes };
}

/** The cron's webhook work: fan out, re-send the overdue, prune. */
export async function sweepWebhooks(deps: Deps) {
  const dispatched = await dispatchWaiting(deps);
  const resent = await resendOverdue(deps);
  const pruned = await prune(deps);
  return { dispatched, resent, pruned };
}
