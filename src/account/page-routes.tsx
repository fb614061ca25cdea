import { listPasskeys } from '../auth/passkeys';
import { toSignIn } from '../auth/page-forms';
import { secondFactorsOf } from '../auth/totp';
import { GatehouseError } from '../lib/errors';
import { requestMeta } from '../lib/request-meta';
import { router } from '../lib/router';
import { clearSessionCookie, requireSession } from '../sessions/middleware';
import { loadAccount, revokeSession, signOut, signOutEverywhere } from './account-sessions';
import { AccountPage } from './pages';

/**
 * The account page and signing out, under /auth. Mounted by src/hosted-pages.ts under its
 * no-store, CSRF and per-IP middleware.
 */
export const accountPages = router('page');

accountPages.get('/account', requireSession, async (c) => {
  const { deps } = c.var;
  const account = await loadAccount(deps, c.var.session);
  const [factors, passkeys] = await Promise.all([secondFactorsOf(deps, account.user.id), listPasskeys(deps, account.user.id)]);
  const setup = c.req.query('setup') === 'passkey' && passkeys.length === 0;
  return c.html(
    <AccountPage
      account={account}
      csrf={c.var.csrfToken}
      security={{ factors, passkeys }}
      setupPasskey={setup}
      askProof={deps.config.gateway.sharedHost}
    />,
  );
});

accountPages.post('/account/sessions/:sid/revoke', requireSession, async (c) => {
  const claims = c.var.session;
  await loadAccount(c.var.deps, claims);
  const sid = c.req.param('sid');
  await revokeSession(c.var.deps, claims, sid, requestMeta(c)).catch((e) => {
    if (!(e instanceof GatehouseError && e.code === 'not_found')) throw e;
  });
  if (sid === claims.sid) return toSignIn(c);
  return c.redirect('/auth/account', 303);
});
accountPages.post('/sign-out', async (c) => {
  if (c.var.session) await signOut(c.var.deps, c.var.session, requestMeta(c));
  clearSessionCookie(c);
  return c.redirect('/auth/sign-in', 303);
});
accountPages.post('/sign-out-everywhere', requireSession, async (c) => {
  await signOutEverywhere(c.var.deps, c.var.session, requestMeta(c));
  return toSignIn(c);
});
