import type { Context } from 'hono';
import type { AppEnv } from '../deps';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { deferTo } from '../lib/defer';
import { requestMeta } from '../lib/request-meta';
import { router } from '../lib/router';
import { requireSession } from '../sessions/middleware';
import { ContinuePage, MessagePage } from '../ui/components';
import { shownEmail } from '../identity/email';
import { en } from '../ui/messages';
import { unlinkIdentity } from './manage-identities';
import { afterFirstFactor, continueTo, formReturnTo, proofFromForm } from './page-forms';
import { signInContext } from './sign-in-context';
import { ConfirmLinkPage } from './upstream-pages';
import {
  confirmPendingLink,
  pendingLinkId,
  finishUpstream,
  PENDING_LINK_TTL,
  readPendingLink,
  startUpstream,
  UPSTREAM_REQUEST_TTL_MS,
} from './upstream-sign-in';
import { safeReturnTo } from './urls';
import { EMAIL_TOKEN_TTL } from '../identity/email-tokens';
import { findProvider } from './upstream-provider-records';
import { failClosed } from '../lib/errors';

type C = Context<AppEnv>;

/**
 * Sign-in with upstream identity providers, under /auth: starting one (a CSRF-checked form post,
 * answered with the Continue page: form-action 'self' would stop a redirect to another origin),
 * confirming a link that waited for proof of the account, and the account page's link and unlink.
 * Mounted by src/hosted-pages.ts under its no-store, CSRF and per-IP middleware.
 */
export const upstreamPages = router('page');

/** The upstreams' way back: GET, or Apple's form POST — from the upstream's page, so no CSRF token of ours; the request's binding cookie stands in. */
export const upstreamCallbacks = router('page');

async function start<E extends AppEnv>(c: Context<E>, intent: 'sign_in' | 'link', returnTo: string | null) {
  const { location, binding } = await startUpstream(c.var.deps, {
    providerId: c.req.param('provider') ?? '',
    intent,
    session: c.var.session,
    returnTo,
    ...(intent === 'link' ? { proof: await proofFromForm(c), meta: requestMeta(c) } : {}),
  });
  writeCookie(c, COOKIES.upstream, binding, UPSTREAM_REQUEST_TTL_MS / 1000);
  return c.html(<ContinuePage href={location} />);
}

// A link that waited for the person to prove the account: confirm (signed in now), or cancel.
upstreamPages.get('/upstream/link', requireSession, async (c) => {
  const { deps } = c.var;
  c.set('returnAfterSignIn', `/auth/upstream/link?${new URL(c.req.url).searchParams}`);
  const identity = await readPendingLink(deps, readCookie(c, COOKIES.pendingLink));
  const provider = identity && (await failClosed('the database', () => findProvider(deps.db, identity.providerId, deps.now())));
  if (!identity || !provider) return c.redirect('/auth/account', 303);
  return c.html(
    <ConfirmLinkPage
      pending={await pendingLinkId(readCookie(c, COOKIES.pendingLink)!)}
      provider={provider.displayName}
      account={identity.email ?? identity.name ?? identity.subject}
      email={shownEmail(c.var.session.email) ?? en.account.withoutEmail}
      returnTo={safeReturnTo(c.req.query('return_to'))}
      csrf={c.var.csrfToken}
      askProof={deps.config.gateway.sharedHost}
    />,
  );
});
upstreamPages.post('/upstream/link', requireSession, async (c) => {
  const { deps } = c.var;
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const token = readCookie(c, COOKIES.pendingLink);
  const returnTo = safeReturnTo(c.req.query('return_to') ?? '/auth/account');
  if (body.decision !== 'link') {
    clearCookie(c, COOKIES.pendingLink);
    return c.redirect('/auth/account', 303);
  }
  c.set('returnAfterSignIn', `/auth/upstream/link?${new URLSearchParams({ return_to: returnTo })}`);
  const shown = typeof body.pending === 'string' ? body.pending : undefined;
  const { provider } = await confirmPendingLink(
    deps,
    c.var.session,
    { token, shown, proof: await proofFromForm(c) },
    requestMeta(c),
    deferTo(c, 'upstream_mail_failed'),
  );
  // Linked: the pending link is spent (a failed proof keeps it, to try again).
  clearCookie(c, COOKIES.pendingLink);
  return returnTo === '/auth/account'
    ? c.redirect(`/auth/account?${new URLSearchParams({ linked: provider })}`, 303)
    : continueTo(c, returnTo);
});

// After /upstream/link: Hono answers with the first route that matches, and `:provider` matches `link`.
upstreamPages.post('/upstream/:provider', async (c) => start(c, 'sign_in', await formReturnTo(c)));
upstreamPages.post('/account/identities/link/:provider', requireSession, async (c) => {
  c.set('returnAfterSignIn', '/auth/account');
  return start(c, 'link', '/auth/account');
});

async function callback(c: C, params: URLSearchParams) {
  c.header('cache-control', 'no-store');
  c.set('errorPage', { title: en.upstream.failedTitle, link: { href: '/auth/sign-in', label: en.signIn.title } });
  const { deps } = c.var;
  const binding = readCookie(c, COOKIES.upstream);
  // The request is over whatever its outcome: its binding goes.
  clearCookie(c, COOKIES.upstream);
  const done = await finishUpstream(deps, {
    providerId: c.req.param('provider') ?? '',
    params,
    binding,
    session: c.var.session,
    ctx: signInContext(c),
    defer: deferTo(c, 'upstream_mail_failed'),
  });
  const returnTo = safeReturnTo(done.returnTo);
  switch (done.kind) {
    case 'signed_in':
      return afterFirstFactor(c, done.outcome, returnTo, { crossSite: true });
    case 'linked':
      return c.redirect(`/auth/account?${new URLSearchParams({ linked: done.provider })}`, 303);
    case 'check_email':
      // One page, and the same cookies, whether an account has the address or not (no enumeration).
      writeCookie(c, COOKIES.pendingLink, done.pendingLink, PENDING_LINK_TTL);
      writeCookie(c, COOKIES.upstreamSignUp, done.signUpBinding, EMAIL_TOKEN_TTL.verify_email);
      return c.html(<MessagePage title={en.upstream.checkEmail} body={en.upstream.checkEmailBody(done.email)} />, 202);
  }
}

/** The answer parameters a callback takes (RFC 6749 §4.1.2, RFC 9207, OIDC; Apple's `user`). */
const ANSWER_PARAMS = ['code', 'state', 'iss', 'error', 'error_description', 'user'] as const;

upstreamCallbacks.get('/upstream/:provider/callback', (c) => callback(c, new URL(c.req.url).searchParams));
/**
 * Apple answers with a form post from its own site: a cross-site POST, which carries none of our
 * SameSite=Lax or Strict cookies (not the binding, not the session a link needs). It goes on as a
 * GET started from a page of ours — a same-site navigation that carries them.
 */
upstreamCallbacks.post('/upstream/:provider/callback', async (c) => {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const params = new URLSearchParams();
  for (const name of ANSWER_PARAMS) {
    const value = body[name];
    if (typeof value === 'string') params.set(name, value.slice(0, 2048));
  }
  c.header('cache-control', 'no-store');
  return c.html(<ContinuePage href={`/auth/upstream/${encodeURIComponent(c.req.param('provider') ?? '')}/callback?${params}`} />);
});

upstreamPages.post('/account/identities/:id/unlink', requireSession, async (c) => {
  const { deps } = c.var;
  c.set('returnAfterSignIn', '/auth/account');
  c.set('errorPage', { title: en.upstream.unlinkFailed, link: { href: '/auth/account', label: en.account.title } });
  await unlinkIdentity(deps, c.var.session, c.req.param('id'), await proofFromForm(c), requestMeta(c), deferTo(c, 'upstream_mail_failed'));
  return c.redirect('/auth/account?unlinked=1', 303);
});
