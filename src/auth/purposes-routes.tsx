import { deferTo } from '../lib/defer';
import { router } from '../lib/router';
import { COOKIES, readCookie } from '../lib/cookies';
import { afterFirstFactor, formAction, formReturnTo } from './page-forms';
import { decisionsFromForm, PurposesPromptPage } from './purposes-pages';
import { completePurposes, purposesWaiting } from './second-factor';
import { signInContext } from './sign-in-context';
import { safeReturnTo } from './urls';

/**
 * The step between a sign-in's factors and its session, when the person has something to accept
 * (a required consent purpose, or a new version of one): /auth/purposes. Mounted by
 * src/hosted-pages.ts under its CSRF and per-IP middleware.
 */
export const purposesPages = router('page');

purposesPages.get('/purposes', async (c) => {
  const returnTo = safeReturnTo(c.req.query('return_to') ?? null);
  const purposes = await purposesWaiting(c.var.deps, readCookie(c, COOKIES.purposes));
  if (!purposes) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  return c.html(<PurposesPromptPage csrf={c.var.csrfToken} purposes={purposes} returnTo={returnTo} />);
});

purposesPages.post('/purposes', async (c) => {
  const returnTo = await formReturnTo(c);
  const { deps } = c.var;
  const pending = readCookie(c, COOKIES.purposes);
  const purposes = await purposesWaiting(deps, pending);
  if (!purposes) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  return formAction(
    c,
    (s) => <PurposesPromptPage {...s} purposes={purposes} returnTo={returnTo} />,
    async () => {
      const decisions = decisionsFromForm(await c.req.parseBody({ all: true }));
      const outcome = await completePurposes(deps, pending, decisions, signInContext(c), { defer: deferTo(c, 'sign_in_mail_failed') });
      return afterFirstFactor(c, outcome, returnTo);
    },
  );
});
