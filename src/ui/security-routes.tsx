import { Hono } from 'hono';
import { getCookie } from 'hono/cookie';
import { ACR } from '../auth/acr';
import { loadAccount } from '../account/sessions';
import { removePasskey } from '../auth/passkeys';
import { secondFactorInput } from '../auth/schemas';
import { assertRecentSignIn, completeSignIn, PENDING_COOKIE, readPending, stepUp } from '../auth/second-factor';
import {
  confirmTotpEnrollment,
  disableTotp,
  hasSecondFactor,
  pendingTotpSecret,
  regenerateRecoveryCodes,
  secondFactorsOf,
  startTotpEnrollment,
} from '../auth/totp';
import { safeReturnTo } from '../auth/urls';
import type { AppEnv } from '../deps';
import { deferTo, parseInput, requestMeta, signInContext } from '../lib/http';
import { setSessionCookie } from '../sessions/middleware';
import { afterFirstFactor, continueTo, formAction, formReturnTo, withAccount, type C } from './form-helpers';
import { NoSecondFactorPage, RecoveryCodesPage, SecondFactorPage, TotpEnrollPage } from './pages/mfa';
import { qrDataUri } from './qr';

/**
 * The second step of a sign-in, step-up, and the account's second factors (authenticator app,
 * recovery codes, passkey removal). Mounted inside the hosted pages' router, under its
 * no-store, CSRF and per-IP middleware.
 */
export const securityPages = new Hono<AppEnv>();

// The second step of a sign-in (pending cookie), or a step-up of the current session.
async function secondFactorState(c: C): Promise<{ userId: string; stepUp: boolean } | null> {
  const pending = await readPending(c.var.deps, getCookie(c, PENDING_COOKIE));
  if (pending) return { userId: pending.sub, stepUp: false };
  return c.var.session ? { userId: c.var.session.sub, stepUp: true } : null;
}

securityPages.get('/second-factor', async (c) => {
  const returnTo = safeReturnTo(c.req.query('return_to') ?? null);
  const state = await secondFactorState(c);
  if (!state) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  const factors = await secondFactorsOf(c.var.deps, state.userId);
  if (!hasSecondFactor(factors)) return c.html(<NoSecondFactorPage returnTo={returnTo} />, 403);
  // A phishing-resistant sign-in can only come from a passkey: codes are not offered then.
  const passkeyOnly = c.req.query('acr') === ACR.phishingResistant;
  if (passkeyOnly && factors.passkeys === 0) return c.html(<NoSecondFactorPage returnTo={returnTo} />, 403);
  const shown = passkeyOnly ? { ...factors, totp: false, recoveryCodesLeft: 0 } : factors;
  return c.html(<SecondFactorPage csrf={c.var.csrfToken} returnTo={returnTo} factors={shown} stepUp={state.stepUp} />);
});
securityPages.post('/second-factor', async (c) => {
  const returnTo = await formReturnTo(c);
  const state = await secondFactorState(c);
  if (!state) return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: returnTo })}`, 303);
  const factors = await secondFactorsOf(c.var.deps, state.userId);
  return formAction(c, (s) => <SecondFactorPage {...s} returnTo={returnTo} factors={factors} stepUp={state.stepUp} />, async () => {
    const { code } = await parseInput(c, 'form', secondFactorInput);
    const { deps } = c.var;
    if (state.stepUp) {
      const { session } = await stepUp(deps, c.var.session!, { kind: 'code', code }, requestMeta(c));
      setSessionCookie(c, session.cookie);
      return continueTo(c, returnTo);
    }
    const done = await completeSignIn(deps, getCookie(c, PENDING_COOKIE), { kind: 'code', code }, signInContext(c), {
      defer: deferTo(c, 'sign_in_mail_failed'),
    });
    return afterFirstFactor(c, { kind: 'signed_in', ...done }, returnTo);
  });
});

// Two-step verification: enrol an authenticator app (QR rendered here, never by a third party).
securityPages.get('/account/totp', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    const returnTo = safeReturnTo(c.req.query('return_to') ?? '/auth/account');
    const enrolment = (await pendingTotpSecret(deps, user)) ?? (await startTotpEnrollment(deps, user));
    return c.html(<TotpEnrollPage csrf={c.var.csrfToken} secret={enrolment.secret} qr={qrDataUri(enrolment.uri)} returnTo={returnTo} />);
  }),
);
securityPages.post('/account/totp', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    const returnTo = await formReturnTo(c);
    const enrolment = await pendingTotpSecret(deps, user);
    if (!enrolment) return c.redirect('/auth/account/totp', 303);
    return formAction(
      c,
      (s) => <TotpEnrollPage {...s} secret={enrolment.secret} qr={qrDataUri(enrolment.uri)} returnTo={returnTo} />,
      async () => {
        const { code } = await parseInput(c, 'form', secondFactorInput);
        const codes = await confirmTotpEnrollment(deps, user.id, code, requestMeta(c));
        return c.html(<RecoveryCodesPage codes={codes} returnTo={returnTo} />);
      },
    );
  }),
);
securityPages.post('/account/totp/remove', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    assertRecentSignIn(c.var.session!, deps.now());
    await disableTotp(deps, user.id, requestMeta(c));
    return c.redirect('/auth/account', 303);
  }),
);
securityPages.post('/account/recovery-codes', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    assertRecentSignIn(c.var.session!, deps.now());
    if (!(await secondFactorsOf(deps, user.id)).totp) return c.redirect('/auth/account/totp', 303);
    return c.html(<RecoveryCodesPage codes={await regenerateRecoveryCodes(deps, user.id, requestMeta(c))} returnTo="/auth/account" />);
  }),
);
securityPages.post('/account/passkeys/:id/remove', (c) =>
  withAccount(c, async () => {
    const { deps } = c.var;
    const { user } = await loadAccount(deps, c.var.session!);
    assertRecentSignIn(c.var.session!, deps.now());
    await removePasskey(deps, user.id, c.req.param('id'), requestMeta(c));
    return c.redirect('/auth/account', 303);
  }),
);
