import { router } from '../lib/router';
import { factorsMeeting } from './acr';
import {
  beginTotpEnrolment,
  deletePasskey,
  finishTotpEnrolment,
  pendingTotpEnrolment,
  removeTotp,
  replaceRecoveryCodes,
} from './manage-factors';
import { secondFactorInput } from './schemas';
import { completeSignIn, readPending, stepUp } from './second-factor';
import { secondFactorsOf } from './totp';
import { safeReturnTo } from './urls';
import { COOKIES, readCookie } from '../lib/cookies';
import { deferTo } from '../lib/defer';
import { parseInput } from '../lib/request-body';
import { requestMeta } from '../lib/request-meta';
import { signInContext } from './sign-in-context';
import { requireSession, setSessionCookie } from '../sessions/middleware';
import type { SessionClaims } from '../sessions/session-token';
import { afterFirstFactor, continueTo, formAction, formReturnTo, proofFromForm, type C } from './page-forms';
import { NoSecondFactorPage, RecoveryCodesPage, SecondFactorPage, TotpEnrollPage } from './second-factor-pages';
import { qrDataUri } from '../ui/qr';

/**
 * The second step of a sign-in, step-up, and the account's second factors (authenticator app,
 * recovery codes, passkey removal). Mounted by src/hosted-pages.ts under its
 * no-store, CSRF and per-IP middleware.
 */
export const secondFactorPages = router('page');

// The second step of a sign-in (pending cookie), or a step-up of the current session.
type SecondFactorState = { userId: string; stepUp: false } | { userId: string; stepUp: true; session: SessionClaims };
async function secondFactorState(c: C): Promise<SecondFactorState | null> {
  const pending = await readPending(c.var.deps, readCookie(c, COOKIES.secondFactor));
  if (pending) return { userId: pending.sub, stepUp: false };
  return c.var.session ? { userId: c.var.session.sub, stepUp: true, session: c.var.session } : null;
}

secondFactorPages.get('/second-factor', async (c) => {
  const returnTo = safeReturnTo(c.req.query('return_to') ?? null);
  const state = await secondFactorState(c);
  if (!state) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  const shown = factorsMeeting(await secondFactorsOf(c.var.deps, state.userId), c.req.query('acr'));
  if (!shown) return c.html(<NoSecondFactorPage returnTo={returnTo} />, 403);
  return c.html(<SecondFactorPage csrf={c.var.csrfToken} returnTo={returnTo} factors={shown} stepUp={state.stepUp} />);
});
secondFactorPages.post('/second-factor', async (c) => {
  const returnTo = await formReturnTo(c);
  const state = await secondFactorState(c);
  if (!state) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  const factors = await secondFactorsOf(c.var.deps, state.userId);
  return formAction(
    c,
    (s) => <SecondFactorPage {...s} returnTo={returnTo} factors={factors} stepUp={state.stepUp} />,
    async () => {
      const { code } = await parseInput(c, 'form', secondFactorInput);
      const { deps } = c.var;
      if (state.stepUp) {
        const { session } = await stepUp(deps, state.session, { kind: 'code', code }, requestMeta(c));
        setSessionCookie(c, session.cookie);
        return continueTo(c, returnTo);
      }
      const done = await completeSignIn(deps, readCookie(c, COOKIES.secondFactor), { kind: 'code', code }, signInContext(c), {
        defer: deferTo(c, 'sign_in_mail_failed'),
      });
      return afterFirstFactor(c, done, returnTo);
    },
  );
});

// Two-step verification: enrol an authenticator app (QR rendered here, never by a third party). Each
// action checks the sensitive-action rule itself (auth/manage-factors.ts).
secondFactorPages.get('/account/totp', requireSession, async (c) => {
  const { deps } = c.var;
  const returnTo = safeReturnTo(c.req.query('return_to') ?? '/auth/account');
  const enrolment = await beginTotpEnrolment(deps, c.var.session);
  return c.html(
    <TotpEnrollPage
      csrf={c.var.csrfToken}
      secret={enrolment.secret}
      qr={qrDataUri(enrolment.uri)}
      returnTo={returnTo}
      askProof={deps.config.gateway.sharedHost}
    />,
  );
});
secondFactorPages.post('/account/totp', requireSession, async (c) => {
  const { deps } = c.var;
  const session = c.var.session;
  const returnTo = await formReturnTo(c);
  const enrolment = await pendingTotpEnrolment(deps, session);
  if (!enrolment) return c.redirect('/auth/account/totp', 303);
  const askProof = deps.config.gateway.sharedHost;
  return formAction(
    c,
    (s) => <TotpEnrollPage {...s} secret={enrolment.secret} qr={qrDataUri(enrolment.uri)} returnTo={returnTo} askProof={askProof} />,
    async () => {
      const { code } = await parseInput(c, 'form', secondFactorInput);
      const codes = await finishTotpEnrolment(deps, session, code, await proofFromForm(c), requestMeta(c));
      return c.html(<RecoveryCodesPage codes={codes} returnTo={returnTo} />);
    },
  );
});
secondFactorPages.post('/account/totp/remove', requireSession, async (c) => {
  await removeTotp(c.var.deps, c.var.session, await proofFromForm(c), requestMeta(c));
  return c.redirect('/auth/account', 303);
});
secondFactorPages.post('/account/recovery-codes', requireSession, async (c) => {
  // Without an authenticator app this is totp_required, which the page channel answers with its set-up page.
  const codes = await replaceRecoveryCodes(c.var.deps, c.var.session, await proofFromForm(c), requestMeta(c));
  return c.html(<RecoveryCodesPage codes={codes} returnTo="/auth/account" />);
});
secondFactorPages.post('/account/passkeys/:id/remove', requireSession, async (c) => {
  await deletePasskey(c.var.deps, c.var.session, c.req.param('id'), await proofFromForm(c), requestMeta(c));
  return c.redirect('/auth/account', 303);
});
