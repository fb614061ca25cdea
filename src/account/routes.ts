import { changePassword } from '../auth/change-password';
import { changeEmailInput, changePasswordInput, deleteAccountInput, purposeDecisionsInput, withProof } from '../auth/schemas';
import { deleteOwnAccount } from '../auth/account-deletion';
import { ownProfile, ownProfileInput, updateOwnProfile } from '../auth/own-profile';
import { CONFIRM_MINUTES, requestEmailChange } from '../auth/email-change';
import { COOKIES, writeCookie } from '../lib/cookies';
import { purposeHistory, purposesOf, purposeView, updatePurposes } from '../auth/purposes';
import { listConnectedApps, revokeConnectedApp } from '../oauth/connected-apps';
import * as z from 'zod';
import { shownEmail } from '../identity/email';
import { deferTo } from '../lib/defer';
import { parseInput } from '../lib/request-body';
import { router } from '../lib/router';
import { requestMeta } from '../lib/request-meta';
import { clearSessionCookie, requireSession, requireSignedIn } from '../sessions/middleware';
import { loadAccount, revokeSession, sessionView, signOut, signOutEverywhere } from './account-sessions';
import { exportFileName, exportOwnData, type ExportDocument } from './data-export';

/** Self-service JSON API for the signed-in user under /auth/api (docs/api.md). */
export const accountApi = router('problem');

// Every method of these paths needs a session: one no route answers is a 401, not a 404.
for (const path of [
  '/me',
  '/sessions',
  '/sessions/*',
  '/sign-out',
  '/sign-out-everywhere',
  '/password',
  '/connected-apps',
  '/connected-apps/*',
  '/export',
  '/delete-account',
  '/email',
  '/profile',
])
  accountApi.use(path, requireSignedIn);

accountApi.get('/me', requireSession, async (c) => {
  const { user, current } = await loadAccount(c.var.deps, c.var.session);
  // An account made from an upstream identity that shared no address has none to show (as the gateway's headers).
  const email = shownEmail(user.email);
  return c.json({
    user: { ...user, email, emailVerified: email === null ? null : user.emailVerified },
    session: sessionView(current, current.sid),
  });
});

accountApi.get('/sessions', requireSession, async (c) => {
  const { current, sessions } = await loadAccount(c.var.deps, c.var.session);
  return c.json({ sessions: sessions.map((s) => sessionView(s, current.sid)) });
});

accountApi.delete('/sessions/:sid', requireSession, async (c) => {
  const claims = c.var.session;
  await loadAccount(c.var.deps, claims);
  const sid = c.req.param('sid');
  await revokeSession(c.var.deps, claims, sid, requestMeta(c));
  if (sid === claims.sid) clearSessionCookie(c);
  return c.body(null, 204);
});

accountApi.post('/sign-out', requireSession, async (c) => {
  await signOut(c.var.deps, c.var.session, requestMeta(c));
  clearSessionCookie(c);
  return c.body(null, 204);
});

accountApi.post('/sign-out-everywhere', requireSession, async (c) => {
  const count = await signOutEverywhere(c.var.deps, c.var.session, requestMeta(c));
  clearSessionCookie(c);
  return c.json({ revoked: count });
});

/** Changes the password (or sets a first one); the other sessions end. */
accountApi.post('/password', requireSession, async (c) => {
  const input = await parseInput(c, 'json', changePasswordInput);
  const done = await changePassword(c.var.deps, c.var.session, input, requestMeta(c), deferTo(c, 'password_mail_failed'));
  return c.json({ status: done.first ? 'password_set' : 'password_changed', sessionsEnded: done.sessionsEnded });
});

/** Every app with access to the account (consents and live refresh tokens). */
accountApi.get('/connected-apps', requireSession, async (c) => {
  await loadAccount(c.var.deps, c.var.session);
  return c.json({ apps: await listConnectedApps(c.var.deps, c.var.session.sub) });
});

/** Takes an app's access away; the body may carry `proof` (a DELETE without a body has none). */
accountApi.delete('/connected-apps/:clientId', requireSession, async (c) => {
  const clientId = c.req.param('clientId');
  const proof = c.req.header('content-type') ? (await parseInput(c, 'json', z.object(withProof))).proof : undefined;
  await revokeConnectedApp(c.var.deps, c.var.session, clientId, proof, requestMeta(c));
  return c.body(null, 204);
});

/** The consent purposes the operator declares, each with the person's answer. */
accountApi.get('/purposes', requireSession, async (c) =>
  c.json({ purposes: (await purposesOf(c.var.deps, c.var.session)).map(purposeView) }),
);

/** Every answer given, newest first. */
accountApi.get('/purposes/history', requireSession, async (c) => c.json({ history: await purposeHistory(c.var.deps, c.var.session) }));

/** Accepts or refuses purposes (each at the version in force); answers that change nothing record nothing. */
accountApi.put('/purposes', requireSession, async (c) => {
  const { decisions } = await parseInput(c, 'json', purposeDecisionsInput);
  const purposes = await updatePurposes(c.var.deps, c.var.session, decisions, requestMeta(c), 'api');
  return c.json({ purposes: purposes.map(purposeView) });
});

/** The JSON download of everything held about the person (a sensitive action: a recent sign-in, or `proof` in a POST). */
const download = (doc: ExportDocument) =>
  new Response(JSON.stringify(doc, null, 2), {
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'content-disposition': `attachment; filename="${exportFileName(doc)}"`,
      'cache-control': 'no-store',
    },
  });
accountApi.get('/export', requireSession, async (c) => download(await exportOwnData(c.var.deps, c.var.session, undefined, requestMeta(c))));
accountApi.post('/export', requireSession, async (c) => {
  const proof = c.req.header('content-type') ? (await parseInput(c, 'json', z.object(withProof))).proof : undefined;
  return download(await exportOwnData(c.var.deps, c.var.session, proof, requestMeta(c)));
});

/** Deletes the account (or schedules it, with a grace period); the session ends either way. */
accountApi.post('/delete-account', requireSession, async (c) => {
  const input = await parseInput(c, 'json', deleteAccountInput);
  const done = await deleteOwnAccount(c.var.deps, c.var.session, input, requestMeta(c), deferTo(c, 'deletion_mail_failed'));
  clearSessionCookie(c);
  return done.status === 'deleted' ? c.json(done) : c.json(done, 202);
});

/**
 * Asks to change the address: a link goes to the new one (or, when another account holds it, a
 * mail telling its owner — the answer here is the same). Binds the link to this browser.
 */
accountApi.post('/email', requireSession, async (c) => {
  const input = await parseInput(c, 'json', changeEmailInput);
  const { binding } = await requestEmailChange(c.var.deps, c.var.session, input, requestMeta(c), deferTo(c, 'email_change_mail_failed'));
  writeCookie(c, COOKIES.emailChange, binding, CONFIRM_MINUTES * 60);
  return c.json({ status: 'confirmation_sent' }, 202);
});

/** The name, locale, time zone and declared attributes the person edits themselves. */
accountApi.get('/profile', requireSession, async (c) => c.json(await ownProfile(c.var.deps, c.var.session)));
accountApi.patch('/profile', requireSession, async (c) => {
  const change = await parseInput(c, 'json', ownProfileInput(c.var.deps.config));
  return c.json(await updateOwnProfile(c.var.deps, c.var.session, change, requestMeta(c)));
});
