import type { Context } from 'hono';
import { PENDING_COOKIE, PENDING_TTL, type SignInOutcome } from '../auth/second-factor';
import { safeReturnTo } from '../auth/urls';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { z } from 'zod';
import { clearCookie, clearSessionCookie, setPendingCookie, setSessionCookie } from '../sessions/middleware';
import { ContinuePage, type FormState } from './pages/credentials';

// What the hosted pages' route files share: running a form action, where to go after a sign-in,
// and the signed-in guard of the account pages.

export type C = Context<AppEnv>;

/**
 * Runs a form action; a 4xx GatehouseError re-renders the form with the message next to its field
 * (status and Retry-After kept). Anything else propagates to the app's error handler.
 */
export async function formAction(c: C, render: (s: FormState) => unknown, run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (e) {
    if (!(e instanceof GatehouseError) || e.status >= 500) throw e;
    if (e.extra.retryAfter) c.header('retry-after', String(e.extra.retryAfter));
    const state: FormState = { csrf: c.var.csrfToken, error: e.message };
    if (e.extra.field) state.field = e.extra.field;
    return c.html(render(state) as string, e.status as 400);
  }
}

/** The email the person typed, to put back into a re-rendered form. */
export const typedEmail = async (c: C) => {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  return typeof body['email'] === 'string' ? body['email'].slice(0, 254) : undefined;
};

/** Where a form post goes once signed in: an authorization request leaves the form submission first. */
export const continueTo = (c: C, returnTo: string) =>
  returnTo.startsWith('/auth/authorize') ? c.html(<ContinuePage href={returnTo} />) : c.redirect(returnTo, 303);

/** A first factor passed: signed in at once, or on to the second step. */
export function afterFirstFactor(c: C, outcome: SignInOutcome, returnTo: string): Response | Promise<Response> {
  if (outcome.kind === 'second_factor') {
    setPendingCookie(c, PENDING_COOKIE, outcome.pending, PENDING_TTL);
    return c.redirect(`/auth/second-factor?${new URLSearchParams({ return_to: returnTo })}`, 303);
  }
  clearCookie(c, PENDING_COOKIE);
  setSessionCookie(c, outcome.session.cookie);
  return continueTo(c, returnTo);
}

export const formReturnTo = async (c: C) => safeReturnTo(((await c.req.parseBody())['return_to'] as string | undefined) ?? null);

export const toSignIn = (c: C) => {
  clearSessionCookie(c);
  return c.redirect(`/auth/sign-in?return_to=${encodeURIComponent('/auth/account')}`, 303);
};

/** Runs an account action for the signed-in user; a missing or revoked session goes to sign-in. */
export async function withAccount(c: C, run: () => Promise<Response>): Promise<Response> {
  if (!c.var.session) return toSignIn(c);
  try {
    return await run();
  } catch (e) {
    if (e instanceof GatehouseError && e.code === 'unauthenticated') return toSignIn(c);
    // Changing second factors needs a recent sign-in: sign in again and come back.
    if (e instanceof GatehouseError && e.code === 'recent_sign_in_required')
      return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: '/auth/account', reason: 'recent' })}`, 303);
    throw e;
  }
}

/** A token from a query or form field; anything unusable becomes '' (and is refused by the action). */
export const tokenQuery = z.string().max(256).catch('');
