import type { Context } from 'hono';
import { PENDING_TTL, type SignInOutcome } from '../auth/second-factor';
import { safeReturnTo } from '../auth/urls';
import type { AppEnv } from '../deps';
import { GatehouseError } from '../lib/errors';
import { z } from 'zod';
import { clearCookie, COOKIES, writeCookie } from '../lib/cookies';
import { clearSessionCookie, setSessionCookie } from '../sessions/middleware';
import type { Proof } from '../auth/recent-auth';
import { ContinuePage, type FormState } from './pages/credentials';
import { ConfirmActionPage } from './pages/mfa';

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

/**
 * Where a form post goes once signed in. An authorization request or a host handshake ends on
 * another origin (a client, an app host), which CSP form-action 'self' would block as the end of a
 * form submission's redirects: those leave the submission through the Continue page first.
 */
export const continueTo = (c: C, returnTo: string) =>
  /^\/auth\/(authorize|connect)(\?|$)/.test(returnTo) ? c.html(<ContinuePage href={returnTo} />) : c.redirect(returnTo, 303);

/** A first factor passed: signed in at once, or on to the second step. */
export function afterFirstFactor(c: C, outcome: SignInOutcome, returnTo: string): Response | Promise<Response> {
  if (outcome.kind === 'second_factor') {
    writeCookie(c, COOKIES.secondFactor, outcome.pending, PENDING_TTL);
    return c.redirect(`/auth/second-factor?${new URLSearchParams({ return_to: returnTo })}`, 303);
  }
  clearCookie(c, COOKIES.secondFactor);
  setSessionCookie(c, outcome.session.cookie);
  return continueTo(c, returnTo);
}

export const formReturnTo = async (c: C) => safeReturnTo(((await c.req.parseBody())['return_to'] as string | undefined) ?? null);

export const toSignIn = (c: C) => {
  clearSessionCookie(c);
  return c.redirect(`/auth/sign-in?return_to=${encodeURIComponent('/auth/account')}`, 303);
};

/** The proof a form carries for a sensitive action (ProofFields): the password, or a code. */
export async function proofFromForm(c: C): Promise<Proof | undefined> {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const text = (name: string) => (typeof body[name] === 'string' && body[name] !== '' ? (body[name] as string).slice(0, 1024) : undefined);
  const password = text('proof_password');
  const code = text('proof_code');
  return password !== undefined ? { password } : code !== undefined ? { code: code.slice(0, 32) } : undefined;
}

/**
 * A sensitive action that needs a proof given now: the same action again, asking for it (fields
 * kept, never the proof or the CSRF token).
 */
export async function askForProof(c: C, e: GatehouseError): Promise<Response> {
  const body = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
  const fields = Object.fromEntries(
    Object.entries(body).filter((f): f is [string, string] => typeof f[1] === 'string' && !['csrf_token', 'proof_password', 'proof_code'].includes(f[0])),
  );
  const error = e.code === 'invalid_proof' ? e.message : undefined;
  return c.html(<ConfirmActionPage csrf={c.var.csrfToken} action={new URL(c.req.url).pathname} fields={fields} error={error} />, 403);
}

export const needsProof = (e: unknown): boolean => e instanceof GatehouseError && (e.code === 'proof_required' || e.code === 'invalid_proof');

/** Runs an account action for the signed-in user; a missing or revoked session goes to sign-in. */
export async function withAccount(c: C, run: () => Promise<Response>): Promise<Response> {
  if (!c.var.session) return toSignIn(c);
  try {
    return await run();
  } catch (e) {
    if (e instanceof GatehouseError && e.code === 'unauthenticated') return toSignIn(c);
    if (needsProof(e) && c.req.method === 'POST') return askForProof(c, e as GatehouseError);
    // A sensitive action needs a recent sign-in on this device: sign in again and come back.
    if (e instanceof GatehouseError && e.code === 'recent_sign_in_required')
      return c.redirect(`/auth/sign-in?${new URLSearchParams({ return_to: c.req.method === 'GET' ? pathOf(c) : '/auth/account', reason: 'recent' })}`, 303);
    throw e;
  }
}

const pathOf = (c: C) => {
  const url = new URL(c.req.url);
  return `${url.pathname}${url.search}`;
};

/** A token from a query or form field; anything unusable becomes '' (and is refused by the action). */
export const tokenQuery = z.string().max(256).catch('');
