import { listPasskeys } from '../auth/passkeys';
import { listIdentities } from '../auth/manage-identities';
import { signInButtons } from '../auth/upstream-provider-records';
import { en } from '../ui/messages';
import { toSignIn } from '../auth/page-forms';
import { secondFactorsOf } from '../auth/totp';
import { failClosed, GatehouseError } from '../lib/errors';
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
  const [factors, passkeys, identities, providers] = await Promise.all([
    secondFactorsOf(deps, account.user.id),
    listPasskeys(deps, account.user.id),
    listIdentities(deps, account.user.id),
    failClosed('the database', () => signInButtons(deps.db, null, deps.now())),
  ]);
  const setup = c.req.query('setup') === 'passkey' && passkeys.length === 0;
  const linked = c.req.query('linked');
  const notice = linked
    ? en.upstream.linked(linked.slice(0, 60))
    : c.req.query('unlinked')
      ? en.upstream.unlinked('The account')
      : undefined;
  return c.html(
    <AccountPage
      account={account}
      csrf={c.var.csrfToken}
      security={{ factors, passkeys }}
      identities={{ linked: identities, linkable: providers }}
      setupPasskey={setup}
      notice={notice}
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
