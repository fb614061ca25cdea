import type { Context } from 'hono';
import * as z from 'zod';
import { safeReturnTo } from '../auth/urls';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { parseInput } from '../lib/request-body';
import { requesterOf } from './requester';
import { requestMeta } from '../lib/request-meta';
import { limitPostsPerIp } from '../lib/rate-limit';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { setSessionCookie } from '../sessions/middleware';
import { router } from '../lib/router';
import { csrfProtection } from '../ui/csrf';
import { HANDOFF_SCRIPT_PATH } from '../ui/layout';
import { HANDOFF_SCRIPT } from '../ui/generated/handoff.bundle';
import { proofFromForm } from '../auth/page-forms';
import { MessagePage } from '../ui/components';
import {
  ApproveSignInPage,
  ConfirmHandOverPage,
  DeviceApprovePage,
  DeviceCodePage,
  HandOverPage,
  JoinedPage,
  JoinPage,
  QrSignInPage,
} from './pages';
import { en } from '../ui/messages';
import { qrDataUri } from '../ui/qr';
import type { HandoffKind } from './handoff-object';
import {
  decideHandoff,
  formatCode,
  HANDOFF_TTL_MS,
  handoffStatus,
  joinContinue,
  normaliseCode,
  joinedContinue,
  openSocket,
  parseHandle,
  pendingHandoff,
  redeemHandoff,
  startContinue,
  startQrSignIn,
} from './handoffs';

type C = Context<AppEnv>;

/** The device that will be signed in keeps its handle here; the original device of a continue handoff, there. */
const WAIT_COOKIE = COOKIES.handoffWait;
const OWN_COOKIE = COOKIES.handoffOwn;

const t = en.handoff;
const kindParam = z.enum(['qr', 'continue', 'device']);
const roleParam = z.enum(['wait', 'own']);
const decisionInput = z.object({ decision: z.enum(['approve', 'deny']) });

/** Hosted pages of the three flows and the waiting device's socket, under /auth. */
export const handoffPages = router('page');

handoffPages.get(HANDOFF_SCRIPT_PATH.replace('/auth', ''), (c) =>
  c.body(HANDOFF_SCRIPT, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
);

// Typing a code is guessing when it is wrong: limited per IP like every credential endpoint.
limitPostsPerIp(handoffPages, ['/handoff/join', '/device']);
// Starting a handoff creates an object: limited per IP too.
limitPostsPerIp(handoffPages, ['/handoff/qr', '/handoff/continue'], 'get');
handoffPages.use('/handoff/*', async (c, next) => {
  c.header('cache-control', 'no-store');
  await next();
});
handoffPages.use('/handoff/approve', csrfProtection);
handoffPages.use('/handoff/continue', csrfProtection);
handoffPages.use('/handoff/continue/*', csrfProtection);
handoffPages.use('/handoff/join', csrfProtection);
handoffPages.use('/handoff/qr', csrfProtection);
handoffPages.use('/device', csrfProtection);
handoffPages.use('/device/*', csrfProtection);

const signInFirst = (c: C) => {
  const url = new URL(c.req.url);
  return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: `${url.pathname}${url.search}` })}`, 303);
};

/**
 * A flow's page. Its errors (src/error-channels.tsx) are a page under the flow's title — or, where
 * approving needs more first, the way to it: signing in again (not recent, or relayed), a proof
 * (an origin shares this host), or a stronger sign-in (the device's client demands one), each
 * coming back to `back`.
 */
function page(c: C, run: () => Promise<Response>, back?: string): Promise<Response> {
  c.set('errorPage', { title: t.qrTitle });
  if (back) c.set('returnAfterSignIn', back);
  return run();
}

const formField = async (c: C, name: string) => {
  const v = (await c.req.parseBody())[name];
  return typeof v === 'string' ? v.slice(0, 256) : '';
};

const decided = (c: C, approve: boolean) =>
  c.html(<MessagePage title={approve ? t.approve : t.deny} body={approve ? t.approved : t.denied} />);

// Flow 1 — QR sign-in. The new device:
handoffPages.get('/handoff/qr', async (c) => {
  const { deps } = c.var;
  const started = await startQrSignIn(deps, requesterOf(c));
  writeCookie(c, WAIT_COOKIE, started.waiter, HANDOFF_TTL_MS / 1000);
  const link = `${deps.config.publicUrl.origin}/auth/handoff/approve?${new URLSearchParams({ h: started.approver })}`;
  return c.html(<QrSignInPage qr={qrDataUri(link)} code={formatCode(started.code)} link={link} />);
});
// …and the phone, signed in (or signing in first):
handoffPages.get('/handoff/approve', (c) =>
  page(c, async () => {
    if (!c.var.session) return signInFirst(c);
    const h = parseHandle(c.req.query('h'));
    if (!h) throw new GatehouseError('not_found', 'This link is not valid.');
    const view = await pendingHandoff(c.var.deps, 'qr', h.code, h.secret);
    return c.html(
      <ApproveSignInPage csrf={c.var.csrfToken} handle={c.req.query('h')!} code={formatCode(h.code)} requester={view.requester} />,
    );
  }),
);
handoffPages.post('/handoff/approve', async (c) =>
  page(
    c,
    async () => {
      if (!c.var.session) return signInFirst(c);
      const body = await c.req.parseBody();
      const h = parseHandle(typeof body['h'] === 'string' ? body['h'] : null);
      if (!h) throw new GatehouseError('not_found', 'This link is not valid.');
      const { decision } = await parseInput(c, 'form', decisionInput);
      const proof = await proofFromForm(c);
      await decideHandoff(
        c.var.deps,
        'qr',
        h.code,
        c.var.session,
        { approve: decision === 'approve', approverSecret: h.secret, proof },
        requestMeta(c),
      );
      return decided(c, decision === 'approve');
    },
    `/auth/handoff/approve?${new URLSearchParams({ h: await formField(c, 'h') })}`,
  ),
);

// Flow 2 — continue on another device. The signed-in device:
handoffPages.get('/handoff/continue', (c) =>
  page(c, async () => {
    if (!c.var.session) return signInFirst(c);
    const { deps } = c.var;
    const started = await startContinue(deps, c.var.session, safeReturnTo(c.req.query('return_to') ?? null));
    writeCookie(c, OWN_COOKIE, started.owner, HANDOFF_TTL_MS / 1000);
    const link = `${deps.config.publicUrl.origin}/auth/handoff/join?code=${formatCode(started.code)}`;
    return c.html(<HandOverPage qr={qrDataUri(link)} code={formatCode(started.code)} link={link} />);
  }),
);
handoffPages.get('/handoff/continue/confirm', (c) =>
  page(c, async () => {
    if (!c.var.session) return signInFirst(c);
    const own = parseHandle(readCookie(c, OWN_COOKIE));
    if (!own) throw new GatehouseError('not_found', 'There is nothing to confirm on this device.');
    const view = await joinedContinue(c.var.deps, own);
    return c.html(<ConfirmHandOverPage csrf={c.var.csrfToken} code={formatCode(own.code)} requester={view.requester} />);
  }),
);
handoffPages.post('/handoff/continue/confirm', (c) =>
  page(
    c,
    async () => {
      if (!c.var.session) return signInFirst(c);
      const own = parseHandle(readCookie(c, OWN_COOKIE));
      if (!own) throw new GatehouseError('not_found', 'There is nothing to confirm on this device.');
      const { decision } = await parseInput(c, 'form', decisionInput);
      const proof = await proofFromForm(c);
      await decideHandoff(
        c.var.deps,
        'continue',
        own.code,
        c.var.session,
        { approve: decision === 'approve', approverSecret: own.secret, proof },
        requestMeta(c),
      );
      clearCookie(c, OWN_COOKIE);
      return decided(c, decision === 'approve');
    },
    '/auth/handoff/continue/confirm',
  ),
);
// …and the other device:
handoffPages.get('/handoff/join', (c) => c.html(<JoinPage csrf={c.var.csrfToken} code={c.req.query('code')?.slice(0, 16)} />));
handoffPages.post('/handoff/join', async (c) => {
  const raw = (await c.req.parseBody())['code'];
  const typed = typeof raw === 'string' ? raw.slice(0, 16) : '';
  const code = normaliseCode(typed);
  c.set('errorForm', (s) => <JoinPage csrf={s.csrf} code={typed} error={s.error} field="code" />);
  if (!code) throw new GatehouseError('invalid_request', 'A code is 8 letters, like BCDF-GHJK.', { field: 'code' });
  const { waiter } = await joinContinue(c.var.deps, code, requesterOf(c));
  writeCookie(c, WAIT_COOKIE, waiter, HANDOFF_TTL_MS / 1000);
  return c.html(<JoinedPage code={formatCode(code)} />);
});

// The socket a waiting page listens on (hibernating WebSocket in the handoff's object).
handoffPages.get('/handoff/socket', async (c) => {
  const { deps } = c.var;
  if (c.req.header('upgrade')?.toLowerCase() !== 'websocket')
    throw new GatehouseError('upgrade_required', 'This endpoint speaks WebSocket.');
  // Browsers always send Origin on WebSocket handshakes: only Gatehouse's own pages may listen.
  if (c.req.header('origin') !== deps.config.publicUrl.origin)
    throw new GatehouseError('forbidden', 'WebSocket connections are accepted from Gatehouse pages only.');
  const kind = kindParam.safeParse(c.req.query('kind'));
  const role = roleParam.safeParse(c.req.query('role'));
  if (!kind.success || !role.success) throw new GatehouseError('invalid_request', 'kind and role are required.');
  const h = parseHandle(readCookie(c, role.data === 'wait' ? WAIT_COOKIE : OWN_COOKIE));
  if (!h) throw new GatehouseError('forbidden', 'Not waiting on any handoff.');
  const upstream = await openSocket(deps, c.req.raw, kind.data, role.data, h);
  if (upstream.status !== 101 || !upstream.webSocket) throw new GatehouseError('forbidden', 'Not waiting on this handoff.');
  // A fresh response: the object's has immutable headers, and the app's middleware adds some.
  return new Response(null, { status: 101, webSocket: upstream.webSocket });
});

// Flow 3 — RFC 8628's user-code page.
handoffPages.get('/device', (c) => {
  if (!c.var.session) return signInFirst(c);
  return c.html(<DeviceCodePage csrf={c.var.csrfToken} code={c.req.query('user_code')?.slice(0, 16)} />);
});
handoffPages.post('/device', async (c) => {
  if (!c.var.session) return signInFirst(c);
  const raw = (await c.req.parseBody())['code'];
  const typed = typeof raw === 'string' ? raw.slice(0, 16) : '';
  const code = normaliseCode(typed);
  c.set('errorForm', (s) => <DeviceCodePage csrf={s.csrf} code={typed} error={s.error} field="code" />);
  if (!code) throw new GatehouseError('invalid_request', 'A code is 8 letters, like BCDF-GHJK.', { field: 'code' });
  const view = await pendingHandoff(c.var.deps, 'device', code);
  return c.html(
    <DeviceApprovePage
      csrf={c.var.csrfToken}
      code={formatCode(code)}
      clientName={String(view.detail['clientName'] ?? 'A device')}
      scope={(view.detail['scope'] as string[]) ?? []}
      requester={view.requester}
    />,
  );
});
handoffPages.post('/device/decide', async (c) =>
  page(
    c,
    async () => {
      if (!c.var.session) return signInFirst(c);
      const raw = (await c.req.parseBody())['code'];
      const code = normaliseCode(typeof raw === 'string' ? raw : null);
      if (!code) throw new GatehouseError('invalid_request', 'The code is missing.', { field: 'code' });
      const { decision } = await parseInput(c, 'form', decisionInput);
      const proof = await proofFromForm(c);
      await decideHandoff(c.var.deps, 'device', code, c.var.session, { approve: decision === 'approve', proof }, requestMeta(c));
      return decided(c, decision === 'approve');
    },
    `/auth/device?${new URLSearchParams({ user_code: (await formField(c, 'code')).slice(0, 16) })}`,
  ),
);

/** JSON for the waiting script under /auth/api: redeem once approved, or poll the state. */
export const handoffApi = router('problem');
handoffApi.use('/handoff/*', async (c, next) => {
  c.header('cache-control', 'no-store');
  await next();
});

handoffApi.post('/handoff/redeem', async (c) => {
  const { kind } = await parseInput(c, 'json', z.object({ kind: z.enum(['qr', 'continue']) }));
  const waiter = parseHandle(readCookie(c, WAIT_COOKIE));
  if (!waiter) throw new GatehouseError('forbidden', 'This browser is not waiting on a handoff.');
  const { session, detail } = await redeemHandoff(c.var.deps, kind, waiter, requestMeta(c));
  clearCookie(c, WAIT_COOKIE);
  setSessionCookie(c, session.cookie);
  const next = kind === 'continue' ? safeReturnTo(typeof detail['returnTo'] === 'string' ? detail['returnTo'] : null) : '/auth/account';
  return c.json({ status: 'signed_in', session: { sid: session.record.sid, amr: session.record.amr }, next });
});

handoffApi.get('/handoff/status', async (c) => {
  const kind = kindParam.safeParse(c.req.query('kind'));
  const role = roleParam.safeParse(c.req.query('role'));
  if (!kind.success || !role.success) throw new GatehouseError('invalid_request', 'kind and role are required.');
  const h = parseHandle(readCookie(c, role.data === 'wait' ? WAIT_COOKIE : OWN_COOKIE));
  if (!h) throw new GatehouseError('forbidden', 'Not waiting on any handoff.');
  return c.json(await handoffStatus(c.var.deps, kind.data as HandoffKind, role.data, h));
});
