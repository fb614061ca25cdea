import type { Context } from 'hono';
import { PENDING_TTL, PURPOSES_TTL, type SignInOutcome } from './second-factor';
import { safeReturnTo } from './urls';
import type { AppEnv } from '../deps';
import * as z from 'zod';
import { clearCookie, COOKIES, writeCookie } from '../lib/cookies';
import { clearSessionCookie, setSessionCookie } from '../sessions/middleware';
import type { Proof } from './recent-auth';
import { ContinuePage, type FormState } from '../ui/components';

// What the hosted pages' route files share: running a form action, and where to go after a sign-in.

export type C = Context<AppEnv>;

/**
 * Runs a form action, declaring its form: a 4xx on the way re-renders it with the message next to
 * its field, status and Retry-After kept (the page channel, src/error-channels.tsx).
 */
export function formAction<E extends AppEnv>(
  c: Context<E>,
  render: (s: FormState) => unknown,
  run: () => Promise<Response>,
): Promise<Response> {
  c.set('errorForm', render);
  return run();
}

/** The email the person typed, to put back into a re-rendered form. */
export const typedEmail = async (c: C) => {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  return typeof body['email'] === 'string' ? body['email'].slice(0, 254) : undefined;
};

/**
 * Where a form post goes once signed in. An authorization request or a host handshake ends on
 * another origin (a client, an app host), which CSP form-action 'self' would block as the end of a
 * form submission's redirects: those leave the submission through the Continue page first.
 */
export const continueTo = (c: Context, returnTo: string) =>
  /^\/auth\/(authorize|connect)(\?|$)/.test(returnTo) ? c.html(<ContinuePage href={returnTo} />) : c.redirect(returnTo, 303);

/** A first factor passed: signed in at once, or on to the second step, or to what must be accepted first. */
export function afterFirstFactor(
  c: C,
  outcome: SignInOutcome,
  returnTo: string,
  o: { crossSite?: boolean } = {},
): Response | Promise<Response> {
  if (outcome.kind === 'second_factor') {
    writeCookie(c, COOKIES.secondFactor, outcome.pending, PENDING_TTL);
    const next = `/auth/second-factor?${new URLSearchParams({ return_to: returnTo })}`;
    // A redirect would go on with the navigation another site started (an upstream's way back), on
    // which the browser holds the SameSite=Strict cookie just set; a page of ours starts a new one.
    return o.crossSite ? c.html(<ContinuePage href={next} />) : c.redirect(next, 303);
  }
  clearCookie(c, COOKIES.secondFactor);
  if (outcome.kind === 'purposes') {
    writeCookie(c, COOKIES.purposes, outcome.pending, PURPOSES_TTL);
    const next = `/auth/purposes?${new URLSearchParams({ return_to: returnTo })}`;
    return o.crossSite ? c.html(<ContinuePage href={next} />) : c.redirect(next, 303);
  }
  clearCookie(c, COOKIES.purposes);
  setSessionCookie(c, outcome.session.cookie);
  return continueTo(c, returnTo);
}

export const formReturnTo = async (c: Context) => safeReturnTo(((await c.req.parseBody())['return_to'] as string | undefined) ?? null);

export const toSignIn = (c: Context) => {
  clearSessionCookie(c);
  return c.redirect(`/auth/sign-in?return_to=${encodeURIComponent('/auth/account')}`, 303);
};

/** The proof a form carries for a sensitive action (ProofFields): the password, or a code. */
export async function proofFromForm(c: Context): Promise<Proof | undefined> {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const text = (name: string) => (typeof body[name] === 'string' && body[name] !== '' ? (body[name] as string).slice(0, 1024) : undefined);
  const password = text('proof_password');
  const code = text('proof_code');
  return password !== undefined ? { password } : code !== undefined ? { code: code.slice(0, 32) } : undefined;
}

/** A token from a query or form field; anything unusable becomes '' (and is refused by the action). */
export const tokenQuery = z.string().max(256).catch('');
