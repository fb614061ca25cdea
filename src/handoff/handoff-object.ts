import { DurableObject } from 'cloudflare:workers';
import type { Env } from '../config';
import { sha256, timingSafeEqualString } from '../lib/crypto';

export type HandoffKind = 'qr' | 'continue' | 'device';
export type HandoffState = 'pending' | 'approved' | 'consumed' | 'denied' | 'expired';

/** Who is asking, shown to the person who approves (never used for decisions). */
export interface Requester {
  device: string;
  ip: string | null;
  place: string | null;
}

/** What the approving side proves: whose session the waiting device gets, and how they signed in. */
export interface Approval {
  userId: string;
  sid: string;
  amr: string[];
  authTime: number;
}

export interface HandoffInit {
  kind: HandoffKind;
  /** The short code that names this object (user code / binding code), normalised. */
  code: string;
  /** SHA-256 of the waiting device's secret: it alone can redeem and listen. Null until a device joins (continue). */
  waiterHash: string | null;
  /** SHA-256 of the approver's secret: the QR link's (qr), the original device's (continue); null for device grants. */
  approverHash: string | null;
  requester: Requester | null;
  /** continue: the user handing over and the page; device: client and scope. */
  detail: Record<string, unknown>;
  now: number;
  ttlMs: number;
  /** Device grant: the minimum polling interval in seconds. */
  interval: number;
}

export interface HandoffView {
  kind: HandoffKind;
  state: HandoffState;
  code: string;
  requester: Requester | null;
  detail: Record<string, unknown>;
  expiresAt: number;
  joined: boolean;
}

export type Transition<T = HandoffView> = { ok: true; value: T } | { ok: false; reason: 'unknown' | 'expired' | 'state' | 'forbidden' };

export type PollResult =
  | { status: 'pending' | 'slow_down' | 'expired' | 'denied' | 'invalid' }
  | { status: 'approved'; approval: Approval; detail: Record<string, unknown> };

interface Row extends Record<string, SqlStorageValue> {
  kind: HandoffKind;
  state: HandoffState;
  code: string;
  waiter_hash: string | null;
  approver_hash: string | null;
  requester: string | null;
  detail: string;
  approval: string | null;
  interval: number;
  last_poll_at: number;
  expires_at: number;
}

/**
 * Whether a device holding the secret with this hash may act as `role` on this handoff: `wait` is
 * the device to be signed in (or the polling device); `own` is the original device of a continue
 * handoff (whose secret is the approver's).
 */
function holds(row: Row, kind: HandoffKind, role: 'wait' | 'own', hash: string): boolean {
  const expected = role === 'wait' ? row.waiter_hash : row.kind === 'continue' ? row.approver_hash : null;
  return row.kind === kind && expected !== null && timingSafeEqualString(expected, hash);
}

/** How long a finished handoff keeps answering (expired_token, access_denied) before it is forgotten. */
const TOMBSTONE_MS = 10 * 60_000;

/**
 * One cross-device handoff (QR sign-in, continue on another device, RFC 8628 device grant), named
 * by its short code. A small state machine — pending → approved → consumed, or denied / expired —
 * where every transition is a read-check-write with no await in it, so under any concurrency each
 * happens once. An alarm expires it; the waiting device is told of every change at once over a
 * hibernating WebSocket. When it is done it forgets what it held (the approval, the requester, the
 * detail) and, after a short tombstone, everything.
 */
export class Handoff extends DurableObject<Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS handoff (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      kind TEXT NOT NULL, state TEXT NOT NULL, code TEXT NOT NULL,
      waiter_hash TEXT, approver_hash TEXT, requester TEXT, detail TEXT NOT NULL, approval TEXT,
      interval INTEGER NOT NULL, last_poll_at INTEGER NOT NULL, expires_at INTEGER NOT NULL
    )`);
  }

  /** Starts the handoff; false when this code already names a live one (the caller picks another code). */
  async start(init: HandoffInit): Promise<boolean> {
    const current = this.row();
    if (current && (current.state === 'pending' || current.state === 'approved') && current.expires_at > init.now) return false;
    this.sql.exec('DELETE FROM handoff');
    this.sql.exec(
      `INSERT INTO handoff (id, kind, state, code, waiter_hash, approver_hash, requester, detail, approval, interval, last_poll_at, expires_at)
       VALUES (1, ?, 'pending', ?, ?, ?, ?, ?, NULL, ?, 0, ?)`,
      init.kind,
      init.code,
      init.waiterHash,
      init.approverHash,
      init.requester ? JSON.stringify(init.requester) : null,
      JSON.stringify(init.detail),
      init.interval,
      init.now + init.ttlMs,
    );
    await this.ctx.storage.setAlarm(init.now + init.ttlMs);
    return true;
  }

  /**
   * What the approving side is shown; null when there is no live handoff of this kind, or when it
   * has an approver secret (QR link, original device) and `approverSecret` does not match it — the
   * requester's details are not for whoever guesses a code.
   */
  async view(kind: HandoffKind, now: number, approverSecret?: string): Promise<HandoffView | null> {
    const hash = approverSecret ? await sha256(approverSecret) : null;
    const row = this.live(kind, now);
    if (!row) return null;
    if (row.approver_hash !== null && (hash === null || !timingSafeEqualString(row.approver_hash, hash))) return null;
    return this.toView(row);
  }

  /** continue: the other device joins (it becomes the waiter) and the original device is told. */
  async join(kind: HandoffKind, waiterSecret: string, requester: Requester, now: number): Promise<Transition> {
    const hash = await sha256(waiterSecret);
    const row = this.live(kind, now);
    if (!row) return this.missing(kind, now);
    if (row.state !== 'pending' || row.waiter_hash !== null) return { ok: false, reason: 'state' };
    this.sql.exec('UPDATE handoff SET waiter_hash = ?, requester = ? WHERE id = 1', hash, JSON.stringify(requester));
    this.notify();
    return { ok: true, value: this.toView(this.row()!) };
  }

  /**
   * Approves (or denies) a pending handoff. `approverSecret` must match for a QR handoff; `owner`
   * must be the user who started a continue handoff. Exactly one concurrent call wins.
   */
  async decide(
    kind: HandoffKind,
    input: { approve: boolean; approval: Approval; approverSecret?: string; now: number },
  ): Promise<Transition> {
    const hash = input.approverSecret ? await sha256(input.approverSecret) : null;
    const row = this.live(kind, input.now);
    if (!row) return this.missing(kind, input.now);
    if (row.state !== 'pending') return { ok: false, reason: 'state' };
    // QR: only the link's secret approves. Continue: only the original device (its secret) of the user who started it.
    if (row.approver_hash !== null && (hash === null || !timingSafeEqualString(row.approver_hash, hash)))
      return { ok: false, reason: 'forbidden' };
    const detail = JSON.parse(row.detail) as Record<string, unknown>;
    if (kind === 'continue' && (detail['userId'] !== input.approval.userId || row.waiter_hash === null))
      return { ok: false, reason: 'forbidden' };
    if (input.approve) {
      this.sql.exec("UPDATE handoff SET state = 'approved', approval = ? WHERE id = 1", JSON.stringify(input.approval));
    } else {
      this.sql.exec("UPDATE handoff SET state = 'denied', approval = NULL, requester = NULL, detail = '{}' WHERE id = 1");
      await this.tombstone(input.now);
    }
    this.notify();
    return { ok: true, value: this.toView(this.row()!) };
  }

  /** The waiting device takes an approved handoff: once. Returns who approved it. */
  async redeem(
    kind: HandoffKind,
    waiterSecret: string,
    now: number,
  ): Promise<Transition<{ approval: Approval; detail: Record<string, unknown> }>> {
    const hash = await sha256(waiterSecret);
    const row = this.live(kind, now);
    if (!row) return this.missing(kind, now);
    if (!holds(row, kind, 'wait', hash)) return { ok: false, reason: 'forbidden' };
    if (row.state !== 'approved' || !row.approval) return { ok: false, reason: 'state' };
    const value = { approval: JSON.parse(row.approval) as Approval, detail: JSON.parse(row.detail) as Record<string, unknown> };
    this.consume();
    await this.tombstone(now);
    return { ok: true, value };
  }

  /**
   * RFC 8628 §3.5 polling by the device: slow_down when it polls faster than the interval (the
   * interval then grows by 5 s), the approval once when approved, then nothing.
   */
  async poll(waiterSecret: string, clientId: string, now: number): Promise<PollResult> {
    const hash = await sha256(waiterSecret);
    const row = this.row();
    if (!row || !holds(row, 'device', 'wait', hash)) return { status: 'invalid' };
    const detail = JSON.parse(row.detail) as Record<string, unknown>;
    if (row.state === 'consumed') return { status: 'invalid' };
    if (row.state === 'denied') return { status: 'denied' };
    if (row.state === 'expired' || row.expires_at <= now) return { status: 'expired' };
    if (detail['clientId'] !== clientId) return { status: 'invalid' };
    const tooSoon = now - row.last_poll_at < row.interval * 1000;
    this.sql.exec('UPDATE handoff SET last_poll_at = ?, interval = interval + ? WHERE id = 1', now, tooSoon ? 5 : 0);
    if (tooSoon) return { status: 'slow_down' };
    if (row.state === 'pending') return { status: 'pending' };
    const approval = JSON.parse(row.approval!) as Approval;
    this.consume();
    await this.tombstone(now);
    return { status: 'approved', approval, detail };
  }

  /** The state for a waiting (or, continue, original) device that polls; null when its secret does not match. */
  async status(
    kind: HandoffKind,
    role: 'wait' | 'own',
    secret: string,
    now: number,
  ): Promise<{ state: HandoffState; joined: boolean } | null> {
    const hash = await sha256(secret);
    const row = this.row();
    if (!row || !holds(row, kind, role, hash)) return null;
    const state = (row.state === 'pending' || row.state === 'approved') && row.expires_at <= now ? 'expired' : row.state;
    return { state, joined: row.waiter_hash !== null };
  }

  /**
   * A WebSocket for the waiting device, or for the original device of a continue handoff
   * (hibernation API). The worker has checked the Origin; here the secret (header
   * `x-handoff-secret`, for the role in `x-handoff-role`) must match this handoff, or it is refused.
   */
  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get('upgrade')?.toLowerCase() !== 'websocket') return new Response('expected a WebSocket', { status: 426 });
    const hash = await sha256(request.headers.get('x-handoff-secret') ?? '');
    const kind = request.headers.get('x-handoff-kind') as HandoffKind;
    const role = request.headers.get('x-handoff-role');
    const row = this.row();
    if (!row || (role !== 'wait' && role !== 'own') || !holds(row, kind, role, hash))
      return new Response('not this handoff', { status: 403 });
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    server.send(this.message(row));
    return new Response(null, { status: 101, webSocket: client });
  }

  override async webSocketMessage(ws: WebSocket): Promise<void> {
    // Any message is a "what is the state?"; the answer is the same message a change pushes.
    const row = this.row();
    ws.send(row ? this.message(row) : JSON.stringify({ state: 'expired' }));
  }

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    try {
      ws.close(code === 1005 ? 1000 : code, 'closing');
    } catch {
      // already closed
    }
  }

  /** Expiry: pending or approved handoffs become expired (and are told); finished ones are forgotten. */
  override async alarm(): Promise<void> {
    const row = this.row();
    if (!row) return;
    const now = Date.now();
    if (row.state === 'pending' || row.state === 'approved') {
      this.sql.exec("UPDATE handoff SET state = 'expired', approval = NULL, requester = NULL, detail = '{}' WHERE id = 1");
      this.notify();
      await this.tombstone(now);
      return;
    }
    for (const ws of this.ctx.getWebSockets()) ws.close(1000, row.state);
    await this.ctx.storage.deleteAll();
  }

  private consume(): void {
    this.sql.exec(
      "UPDATE handoff SET state = 'consumed', approval = NULL, requester = NULL, detail = '{}', approver_hash = NULL WHERE id = 1",
    );
    this.notify();
  }

  private async tombstone(now: number): Promise<void> {
    await this.ctx.storage.setAlarm(now + TOMBSTONE_MS);
  }

  private message(row: Row): string {
    return JSON.stringify({
      state: row.state,
      joined: row.waiter_hash !== null,
      requester: row.requester ? JSON.parse(row.requester) : null,
    });
  }

  private notify(): void {
    const row = this.row();
    if (!row) return;
    const message = this.message(row);
    for (const ws of this.ctx.getWebSockets()) {
      try {
        ws.send(message);
      } catch {
        // a socket that went away; the client falls back to polling
      }
    }
  }

  private row(): Row | undefined {
    return this.sql.exec<Row>('SELECT * FROM handoff WHERE id = 1').toArray()[0];
  }

  /** The handoff if it is of this kind, not expired by the clock, and not finished. */
  private live(kind: HandoffKind, now: number): Row | undefined {
    const row = this.row();
    if (!row || row.kind !== kind || row.expires_at <= now || row.state === 'expired') return undefined;
    return row;
  }

  private missing(kind: HandoffKind, now: number): { ok: false; reason: 'unknown' | 'expired' } {
    const row = this.row();
    return { ok: false, reason: row && row.kind === kind && (row.expires_at <= now || row.state === 'expired') ? 'expired' : 'unknown' };
  }

  private toView(row: Row): HandoffView {
    return {
      kind: row.kind,
      state: row.state,
      code: row.code,
      requester: row.requester ? (JSON.parse(row.requester) as Requester) : null,
      detail: JSON.parse(row.detail) as Record<string, unknown>,
      expiresAt: row.expires_at,
      joined: row.waiter_hash !== null,
    };
  }
}
