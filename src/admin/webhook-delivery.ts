import { Webhook } from 'standardwebhooks';
import type { WebhookEndpointRow } from '../db/schema';
import type { Deps } from '../deps';
import { signingSecrets } from './webhook-endpoints';
import { type OutboxEvent, payloadOf, webhookIdOf } from './webhook-events';
import { webhookUrlProblem } from './webhook-urls';

/**
 * One attempt at one delivery, as the queue consumer makes it: claim the attempt (so two messages
 * for one delivery never send it twice at once), check the URL again (its rules, or the endpoint,
 * may have changed), sign per Standard Webhooks with every live secret, POST with a deadline, and
 * record how it went: 2xx is success; otherwise a retry after an exponential backoff, until the
 * attempts are spent and the delivery has failed. An endpoint whose deliveries keep failing
 * (WEBHOOK_DISABLE_AFTER in a row) is turned off, with the reason.
 */

/** The dead-letter queue of webhook deliveries (wrangler.toml [[queues.consumers]]). */
export const WEBHOOK_DEAD_LETTERS = 'gatehouse-webhooks-dlq';
/** The receiver's answer must start within this long. */
export const DEADLINE_MS = 10_000;
/** An attempt holds its delivery this long; past it (the consumer died) the sweep sends it again. */
const LEASE_MS = 60_000;
/** A message may arrive this much before its delivery's time (clocks of two isolates). */
const EARLY_MS = 1_000;
/** At most this much of a failed answer's body is read and kept (last_error). */
const ERROR_BYTES = 200;
/** A queue's longest delay. */
const MAX_DELAY_S = 12 * 3600;

export type Outcome =
  | { kind: 'skipped'; reason: string }
  | { kind: 'succeeded'; status: number }
  | { kind: 'retry'; delaySeconds: number; error: string }
  | { kind: 'failed'; error: string };

/** The delay before attempt `attempts + 1`: the base, doubled per attempt made, at most 12 h. */
export const backoffSeconds = (base: number, attempts: number) => Math.min(base * 2 ** (attempts - 1), MAX_DELAY_S);

type Claimed = { event_id: number; endpoint_id: string; attempts: number };

/** Makes one attempt at `deliveryId` (a queue message's body) and records it. */
export async function attemptDelivery(deps: Deps, deliveryId: string): Promise<Outcome> {
  const now = deps.now();
  const claimed = await deps.d1
    .prepare(
      `UPDATE webhook_deliveries SET attempts = attempts + 1, last_attempt_at = ?2, next_attempt_at = ?3
       WHERE id = ?1 AND status = 'pending' AND next_attempt_at <= ?4
         AND endpoint_id IN (SELECT id FROM webhook_endpoints WHERE enabled = 1)
       RETURNING event_id, endpoint_id, attempts`,
    )
    .bind(deliveryId, now, now + LEASE_MS, now + EARLY_MS)
    .first<Claimed>();
  if (!claimed) return { kind: 'skipped', reason: 'not due, finished, or its endpoint is off' };
  const [event, endpoint] = await deps.d1.batch([
    deps.d1
      .prepare(
        `SELECT e.id, e.type, e.user_id AS userId, e.user, e.detail, e.created_at AS createdAt, a.type AS auditType, a.actor
         FROM webhook_events e LEFT JOIN audit_events a ON a.id = e.id WHERE e.id = ?1`,
      )
      .bind(claimed.event_id),
    deps.d1.prepare('SELECT * FROM webhook_endpoints WHERE id = ?1').bind(claimed.endpoint_id),
  ]);
  const e = event!.results[0] as OutboxEvent | undefined;
  const p = endpoint!.results[0] as Record<string, unknown> | undefined;
  const payload = e ? payloadOf(e) : null;
  if (!e || !p || !payload)
    return record(deps, deliveryId, claimed, { ok: false, status: null, error: 'event unknown to this version' }, true);
  const row = endpointRow(p);
  const refused = webhookUrlProblem(row.url, deps.config.environment);
  if (refused) return record(deps, deliveryId, claimed, { ok: false, status: null, error: `url ${refused}` }, true);
  const body = JSON.stringify(payload);
  const headers = await sign(deps, row, webhookIdOf(e), body, now);
  return record(deps, deliveryId, claimed, await post(deps, row.url, headers, body));
}

/** The Standard Webhooks headers: the event's id, the attempt's time, a signature per live secret. */
async function sign(deps: Deps, row: WebhookEndpointRow, id: string, body: string, now: number): Promise<Record<string, string>> {
  const at = new Date(now);
  const secrets = await signingSecrets(deps, row, now);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(now / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' '),
  };
}

type Answer = { ok: boolean; status: number | null; error: string | null };

async function post(deps: Deps, url: string, headers: Record<string, string>, body: string): Promise<Answer> {
  let res: Response;
  try {
    res = await deps.fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'Gatehouse-Webhooks/1', ...headers },
      body,
      // A redirect is an answer, not an instruction: it could point anywhere (SSRF).
      redirect: 'manual',
      signal: AbortSignal.timeout(DEADLINE_MS),
    });
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
    return { ok: false, status: null, error: timedOut ? `no answer within ${DEADLINE_MS / 1000} s` : 'could not connect' };
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel();
    return { ok: true, status: res.status, error: null };
  }
  return { ok: false, status: res.status, error: `HTTP ${res.status}${await snippet(res)}` };
}

/** The start of a failed answer's body, printable, for the operator; the rest is never read. */
async function snippet(res: Response): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  try {
    const { value } = await reader.read();
    const text = new TextDecoder()
      .decode(value?.slice(0, ERROR_BYTES))
      .replace(/[^\x20-\x7e]+/g, ' ')
      .trim();
    return text ? `: ${text}` : '';
  } catch {
    return '';
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

/**
 * Records an attempt: success (the endpoint's failures in a row start again), a retry at the next
 * backoff, or — attempts spent, or `final` — a failed delivery, which counts toward turning the
 * endpoint off.
 */
async function record(deps: Deps, id: string, claimed: Claimed, answer: Answer, final = false): Promise<Outcome> {
  const now = deps.now();
  const { maxAttempts, backoffBase, disableAfter } = deps.config.webhooks;
  const delivery = (status: string, next: number | null) =>
    deps.d1
      .prepare('UPDATE webhook_deliveries SET status = ?2, last_status = ?3, last_error = ?4, next_attempt_at = ?5 WHERE id = ?1')
      .bind(id, status, answer.status, answer.error, next);
  if (answer.ok) {
    await deps.d1.batch([
      delivery('succeeded', null),
      deps.d1.prepare('UPDATE webhook_endpoints SET failures_in_a_row = 0 WHERE id = ?1').bind(claimed.endpoint_id),
    ]);
    return { kind: 'succeeded', status: answer.status! };
  }
  const error = answer.error ?? 'failed';
  if (!final && claimed.attempts < maxAttempts) {
    const delaySeconds = backoffSeconds(backoffBase, claimed.attempts);
    await delivery('pending', now + delaySeconds * 1000).run();
    return { kind: 'retry', delaySeconds, error };
  }
  const reason = `Turned off after ${disableAfter} deliveries in a row failed (${new Date(now).toISOString()}; last: ${error}).`;
  await deps.d1.batch([
    delivery('failed', null),
    deps.d1
      .prepare(
        `UPDATE webhook_endpoints SET failures_in_a_row = failures_in_a_row + 1,
           enabled = CASE WHEN failures_in_a_row + 1 >= ?2 THEN 0 ELSE enabled END,
           disabled_reason = CASE WHEN failures_in_a_row + 1 >= ?2 AND enabled = 1 THEN ?3 ELSE disabled_reason END
         WHERE id = ?1`,
      )
      .bind(claimed.endpoint_id, disableAfter, reason),
  ]);
  return { kind: 'failed', error };
}

/** A raw webhook_endpoints row (snake_case, 0/1) as Drizzle's row type. */
function endpointRow(p: Record<string, unknown>): WebhookEndpointRow {
  return {
    id: p.id as string,
    url: p.url as string,
    description: (p.description as string | null) ?? null,
    eventTypes: p.event_types as string,
    secrets: p.secrets as string,
    enabled: p.enabled === 1,
    disabledReason: (p.disabled_reason as string | null) ?? null,
    failuresInARow: p.failures_in_a_row as number,
    createdAt: p.created_at as number,
    updatedAt: p.updated_at as number,
  };
}

/** Marks a delivery whose message was dead-lettered (the consumer could not process it) as failed. */
export async function markDeadLettered(deps: Deps, deliveryId: string): Promise<void> {
  await deps.d1
    .prepare(
      `UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL,
         last_error = 'Gatehouse could not process this delivery (dead-lettered); replay it once the cause is fixed.'
       WHERE id = ?1 AND status = 'pending'`,
    )
    .bind(deliveryId)
    .run();
}

/** A queue message's body, when it is one of ours. */
export const deliveryIdOf = (body: unknown): string | null => {
  const id = (body as { deliveryId?: unknown } | null)?.deliveryId;
  return typeof id === 'string' && id.length <= 64 ? id : null;
};

/**
 * The queue consumer: every message of the batch at once, each acknowledged or retried after its
 * backoff. An error of Gatehouse's own (D1 down) retries the message; past the queue's max_retries
 * it is dead-lettered, and the dead-letter queue's consumer marks the delivery failed.
 */
export async function consumeWebhookBatch(deps: Deps, batch: MessageBatch, deadLetters: boolean): Promise<void> {
  await Promise.all(
    batch.messages.map(async (msg) => {
      const id = deliveryIdOf(msg.body);
      if (!id) return msg.ack();
      try {
        if (deadLetters) {
          await markDeadLettered(deps, id);
          return msg.ack();
        }
        const outcome = await attemptDelivery(deps, id);
        if (outcome.kind === 'retry') msg.retry({ delaySeconds: outcome.delaySeconds });
        else msg.ack();
        if (outcome.kind === 'failed') console.log(JSON.stringify({ event: 'webhook_delivery_failed', deliveryId: id }));
      } catch (e) {
        console.error(JSON.stringify({ event: 'webhook_consumer_failed', deliveryId: id, error: e instanceof Error ? e.name : 'unknown' }));
        msg.retry({ delaySeconds: backoffSeconds(deps.config.webhooks.backoffBase, msg.attempts) });
      }
    }),
  );
}
