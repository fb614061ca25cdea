import { shownEmail } from '../identity/email';
import { router } from '../lib/router';
import { requestMeta } from '../lib/request-meta';
import { clearSessionCookie, requireSession, requireSignedIn } from '../sessions/middleware';
import { loadAccount, revokeSession, sessionView, signOut, signOutEverywhere } from './account-sessions';

/** Self-service JSON API for the signed-in user under /auth/api (docs/api.md). */
export const accountApi = router('problem');

// Every method of these paths needs a session: one no route answers is a 401, not a 404.
for (const path of ['/me', '/sessions', '/sessions/*', '/sign-out', '/sign-out-everywhere']) accountApi.use(path, requireSignedIn);

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
