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
import { changePassword, hasPassword } from '../auth/change-password';
import { proofFromForm } from '../auth/page-forms';
import { deferTo } from '../lib/defer';
import { parseInput } from '../lib/request-body';
import { PasswordPage } from './password-pages';
import { listConnectedApps, revokeConnectedApp } from '../oauth/connected-apps';
import { purposesOf, updatePurposes } from '../auth/purposes';
import { decisionsFromForm } from '../auth/purposes-pages';
import * as z from 'zod';
import { exportFileName, exportOwnData } from './data-export';
import { confirmationFor, deleteOwnAccount } from '../auth/account-deletion';
import { DeleteAccountPage } from './delete-pages';
import { MessagePage } from '../ui/components';

/**
 * The account page and signing out, under /auth. Mounted by src/hosted-pages.ts under its
 * no-store, CSRF and per-IP middleware.
 */
export const accountPages = router('page');

accountPages.get('/account', requireSession, async (c) => {
  const { deps } = c.var;
  const account = await loadAccount(deps, c.var.session);
  const [factors, passkeys, identities, providers, withPassword, apps, purposes] = await Promise.all([
    secondFactorsOf(deps, account.user.id),
    listPasskeys(deps, account.user.id),
    listIdentities(deps, account.user.id),
    failClosed('the database', () => signInButtons(deps.db, null, deps.now())),
    hasPassword(deps, account.user.id),
    listConnectedApps(deps, account.user.id),
    purposesOf(deps, c.var.session),
  ]);
  const setup = c.req.query('setup') === 'passkey' && passkeys.length === 0;
  const linked = c.req.query('linked');
  const password = c.req.query('password');
  const revokedApp = c.req.query('app') === 'revoked';
  const notice = linked
    ? en.upstream.linked(linked.slice(0, 60))
    : c.req.query('unlinked')
      ? en.upstream.unlinked('The account')
      : password === 'changed'
        ? en.passwordChange.changed
        : password === 'set'
          ? en.passwordChange.setDone
          : revokedApp
            ? en.apps.revoked
            : c.req.query('purposes') === 'saved'
              ? en.purposes.saved
              : c.req.query('email') === 'changed'
                ? en.emailChange.changed
                : c.req.query('profile') === 'saved'
                  ? en.profile.saved
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
      hasPassword={withPassword}
      apps={apps}
      purposes={purposes}
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

// Password: change it (the current password, or a recent sign-in), or set a first one.
accountPages.get('/account/password', requireSession, async (c) => {
  const { deps } = c.var;
  const { user } = await loadAccount(deps, c.var.session);
  return c.html(
    <PasswordPage
      csrf={c.var.csrfToken}
      email={user.email}
      hasPassword={await hasPassword(deps, user.id)}
      minLength={deps.config.passwordMinLength}
      askProof={deps.config.gateway.sharedHost}
    />,
  );
});
const passwordForm = z.object({
  current_password: z.string().max(4096, 'current_password is too long').optional(),
  new_password: z.string({ error: 'new_password is required' }).max(4096, 'new_password is too long'),
});
accountPages.post('/account/password', requireSession, async (c) => {
  const { deps } = c.var;
  const session = c.var.session;
  const had = await hasPassword(deps, session.sub);
  const render = (s: { csrf: string; error?: string; field?: string }) => (
    <PasswordPage
      {...s}
      email={session.email}
      hasPassword={had}
      minLength={deps.config.passwordMinLength}
      askProof={deps.config.gateway.sharedHost}
    />
  );
  // A 4xx about a field re-renders the form with the message there; the rest (a sign-in grown
  // stale, a lock) go where the page channel sends them (sign in again, the error page).
  try {
    const form = await parseInput(c, 'form', passwordForm);
    const current = form.current_password ? form.current_password : undefined;
    const done = await changePassword(
      deps,
      session,
      { currentPassword: current, newPassword: form.new_password, proof: current ? undefined : await proofFromForm(c) },
      requestMeta(c),
      deferTo(c, 'password_mail_failed'),
    );
    return c.redirect(`/auth/account?password=${done.first ? 'set' : 'changed'}`, 303);
  } catch (e) {
    if (!(e instanceof GatehouseError && e.status < 500 && e.extra.field)) throw e;
    if (e.extra.retryAfter) c.header('retry-after', String(e.extra.retryAfter));
    return c.html(render({ csrf: c.var.csrfToken, error: e.message, field: e.extra.field }), e.status as 400);
  }
});

accountPages.post('/account/connected-apps/:clientId/revoke', requireSession, async (c) => {
  const { deps } = c.var;
  const clientId = c.req.param('clientId');
  await revokeConnectedApp(deps, c.var.session, clientId, await proofFromForm(c), requestMeta(c));
  return c.redirect('/auth/account?app=revoked', 303);
});

accountPages.post('/account/purposes', requireSession, async (c) => {
  const decisions = decisionsFromForm(await c.req.parseBody({ all: true }));
  await updatePurposes(c.var.deps, c.var.session, decisions, requestMeta(c), 'account');
  return c.redirect('/auth/account?purposes=saved', 303);
});

/** The download of the account's data (sensitive: a recent sign-in here, or the proof fields). */
accountPages.post('/account/export', requireSession, async (c) => {
  const doc = await exportOwnData(c.var.deps, c.var.session, await proofFromForm(c), requestMeta(c));
  return c.body(JSON.stringify(doc, null, 2), 200, {
    'content-type': 'application/json; charset=utf-8',
    'content-disposition': `attachment; filename="${exportFileName(doc)}"`,
  });
});

// Deleting the account: the confirmation page, then the deletion (or its schedule, with a grace period).
accountPages.get('/account/delete', requireSession, async (c) => {
  const { deps } = c.var;
  const { user } = await loadAccount(deps, c.var.session);
  return c.html(
    <DeleteAccountPage
      csrf={c.var.csrfToken}
      confirmation={confirmationFor(user)}
      graceDays={deps.config.deletionGraceDays}
      askProof={deps.config.gateway.sharedHost}
    />,
  );
});
const deleteForm = z.object({ confirm: z.string({ error: 'confirm is required' }).max(320, 'confirm is too long') });
accountPages.post('/account/delete', requireSession, async (c) => {
  const { deps } = c.var;
  const session = c.var.session;
  try {
    const form = await parseInput(c, 'form', deleteForm);
    const done = await deleteOwnAccount(
      deps,
      session,
      { confirm: form.confirm, proof: await proofFromForm(c) },
      requestMeta(c),
      deferTo(c, 'deletion_mail_failed'),
    );
    clearSessionCookie(c);
    const body = done.status === 'deleted' ? en.data.deleted : en.data.scheduled(new Date(done.dueAt).toUTCString());
    return c.html(<MessagePage title={en.data.delete} body={body} link={{ href: '/auth/sign-in', label: en.signIn.title }} />);
  } catch (e) {
    if (!(e instanceof GatehouseError && e.status < 500 && e.extra.field)) throw e;
    return c.html(
      <DeleteAccountPage
        csrf={c.var.csrfToken}
        confirmation={session.email ? confirmationFor({ email: session.email }) : 'delete'}
        graceDays={deps.config.deletionGraceDays}
        askProof={deps.config.gateway.sharedHost}
        error={e.message}
        field={e.extra.field}
      />,
      e.status as 400,
    );
  }
});
