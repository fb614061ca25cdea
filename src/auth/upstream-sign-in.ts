import type { BatchItem } from 'drizzle-orm/batch';
import { and, eq } from 'drizzle-orm';
import { jwtVerify, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { linkedIdentities, upstreamRequests, users, type User } from '../db/schema';
import type { Deps } from '../deps';
import { auditInsert, type AuditType, type RequestMeta } from '../identity/audit';
import { placeholderEmail, shownEmail } from '../identity/email';
import { issueEmailToken, EMAIL_TOKEN_TTL } from '../identity/email-tokens';
import { findLinkedIdentity } from '../identity/linked-identities';
import { findUserByEmail, findUserById, newUserId } from '../identity/users';
import { randomToken, seal, sha256, timingSafeEqualString } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import type { Mail } from '../mail/mailer';
import { identityLinkedMail, identityLinkRequestMail, upstreamSignUpMail } from '../mail/templates';
import type { SessionClaims } from '../sessions/session-token';
import { assertLiveSession } from '../sessions/session-lifecycle';
import { authorizeSensitiveAction, type Proof } from './recent-auth';
import type { SignInContext } from './risk';
import { completeFirstFactor, type SignInOutcome } from './second-factor';
import { mailLimitReached, recordAttempt } from './throttle';
import { authorizationUrl, completeAuthorization, upstreamFailed, type UpstreamEnv, type UpstreamIdentity } from './upstream-protocol';
import { findProvider } from './upstream-provider-records';
import { callbackPath, tokensAad, type UpstreamProvider } from './upstream-providers';
import { authUrl } from './urls';

/** A sign-in at an upstream must come back within this. */
export const UPSTREAM_REQUEST_TTL_MS = 10 * 60_000;
/** A pending link waits this long for the person to prove the local account. */
export const PENDING_LINK_TTL = 10 * 60;
const PENDING_LINK_TYPE = 'gh-pending-link+jwt';

const callbackUrl = (deps: Deps, providerId: string) => `${deps.config.publicUrl.origin}${callbackPath(providerId)}`;

const envOf = (deps: Deps): UpstreamEnv => ({ kek: deps.config.keyEncryptionKey, fetch: deps.fetch, now: deps.now });

async function providerOrNotFound(deps: Deps, id: string): Promise<UpstreamProvider> {
  const p = await failClosed('the database', () => findProvider(deps.db, id, deps.now()));
  if (!p) throw new GatehouseError('not_found', 'There is no such way to sign in.');
  return p;
}

/**
 * Sends the person to an upstream: a request kept under the hash of its `state` and bound to this
 * browser (`binding`, the cookie's secret, kept as a hash), with a PKCE verifier and — for OpenID
 * upstreams — a nonce. Linking to the signed-in account (`link`) is adding a way to sign in: a
 * sensitive action (a proof given now, or a recent sign-in on this device where no origin shares
 * the host).
 */
export async function startUpstream(
  deps: Deps,
  r: {
    providerId: string;
    intent: 'sign_in' | 'link';
    session: SessionClaims | null;
    returnTo: string | null;
    proof?: Proof | undefined;
    meta?: RequestMeta;
  },
): Promise<{ location: string; binding: string }> {
  const p = await providerOrNotFound(deps, r.providerId);
  if (r.intent === 'link') {
    if (!r.session) throw new GatehouseError('unauthenticated', 'Sign in to link another account to yours.');
    await authorizeSensitiveAction(deps, r.session, r.proof, r.meta ?? { ip: null, userAgent: null });
  }
  const now = deps.now();
  const state = oauth.generateRandomState();
  const nonce = p.kind === 'github' ? null : oauth.generateRandomNonce();
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const binding = randomToken(32);
  const location = await authorizationUrl(envOf(deps), p, { redirectUri: callbackUrl(deps, p.id), state, nonce, codeVerifier });
  await failClosed('the database', async () => {
    // Expired requests are purged by the scheduled handler (src/db/retention.ts); the callback refuses them.
    await deps.db.batch([
      deps.db.insert(upstreamRequests).values({
        stateHash: await sha256(state),
        bindingHash: await sha256(binding),
        providerId: p.id,
        nonce,
        codeVerifier,
        returnTo: r.returnTo,
        intent: r.intent,
        userId: r.intent === 'link' ? r.session!.sub : null,
        expiresAt: now + UPSTREAM_REQUEST_TTL_MS,
      }),
    ]);
  });
  return { location: location.toString(), binding };
}

/** Where a finished upstream sign-in goes next. */
export type UpstreamOutcome =
  | { kind: 'signed_in'; outcome: SignInOutcome; returnTo: string | null }
  | { kind: 'linked'; provider: string; returnTo: string | null }
  /**
   * This upstream may not vouch for the address: a mail went to it (within its limit), and the
   * answer is the same whether an account has it or not (no enumeration). An account has it: the
   * identity waits (`pendingLink`, a cookie) for the person to sign in to that account and confirm;
   * none has it: the mailed link makes the account, linked only in this browser (`signUpBinding`).
   * Both cookies are set either way (the one a branch does not use holds a value that leads nowhere
   * else), so not even the Set-Cookie names of the answer tell the two apart.
   */
  | { kind: 'check_email'; email: string; pendingLink: string; signUpBinding: string; returnTo: string | null };

/**
 * The upstream's answer: the request it belongs to is taken once (a replayed callback, or one from
 * another browser, matches nothing), the answer checked (upstream-protocol.ts), then who the
 * person is here, by the linking rules (docs/authentication.md "Linking"):
 * - an identity already linked signs in as its user (its claims refreshed);
 * - a new identity whose address an account has links at once only when this upstream is trusted
 *   for the address's domain, says it verified it, and the account's address is verified too;
 *   otherwise the person proves the account (signs in to it) and confirms the link;
 * - a new identity with an address nobody has makes an account — verified if the upstream is
 *   trusted for it and verified it, else once a mailed link is opened;
 * - a new identity with no address makes an account without one.
 * Then on as any first factor (amr `fed`): the client's and the policy's second factor still apply.
 */
export async function finishUpstream(
  deps: Deps,
  r: {
    providerId: string;
    params: URLSearchParams;
    binding: string | undefined;
    session: SessionClaims | null;
    ctx: SignInContext;
    defer: (task: Promise<void>) => void;
  },
): Promise<UpstreamOutcome> {
  const p = await providerOrNotFound(deps, r.providerId);
  const state = r.params.get('state');
  const lost = () => upstreamFailed('This sign-in was not started in this browser, or has already finished. Start again.');
  if (!state || !r.binding || !/^[A-Za-z0-9_-]{43}$/.test(r.binding)) throw lost();
  const now = deps.now();
  const [stateHash, bindingHash] = await Promise.all([sha256(state), sha256(r.binding)]);
  const request = await failClosed('the database', () =>
    deps.db
      .delete(upstreamRequests)
      .where(
        and(
          eq(upstreamRequests.stateHash, stateHash),
          eq(upstreamRequests.bindingHash, bindingHash),
          eq(upstreamRequests.providerId, p.id),
        ),
      )
      .returning()
      .get(),
  );
  if (!request) throw lost();
  if (request.expiresAt <= now) throw upstreamFailed('This sign-in took too long. Start again.');
  const identity = await completeAuthorization(envOf(deps), p, {
    params: r.params,
    state,
    nonce: request.nonce,
    codeVerifier: request.codeVerifier,
    redirectUri: callbackUrl(deps, p.id),
  });

  if (request.intent === 'link') {
    if (!r.session || r.session.sub !== request.userId) throw lost();
    // Still the session that started it: one ended since (sign out everywhere, a stolen one revoked) links nothing.
    await assertLiveSession(deps, r.session);
    await linkToUser(deps, r.session.sub, identity, p, r.ctx.meta, r.defer);
    return { kind: 'linked', provider: p.displayName, returnTo: request.returnTo };
  }

  const linked = await failClosed('the database', () => findLinkedIdentity(deps.db, identity.issuer, identity.subject));
  if (linked) {
    const user = await failClosed('the database', () => findUserById(deps.db, linked.userId));
    if (!user) throw lost();
    const sealed = await sealedTokens(deps, identity, linked.id);
    const outcome = await signIn(deps, user, p, r.ctx, r.defer, [refreshStatement(deps, linked.id, identity, now, sealed)]);
    return { kind: 'signed_in', outcome, returnTo: request.returnTo };
  }

  if (identity.email) {
    const local = await failClosed('the database', () => findUserByEmail(deps.db, identity.email!));
    if (local) {
      if (identity.emailTrusted && local.emailVerifiedAt !== null) {
        const link = newLinkStatement(deps, await newLink(deps, local.id, identity), identity, now);
        const outcome = await signIn(deps, local, p, r.ctx, r.defer, [
          link,
          auditInsert(deps.db, {
            type: 'identity_linked',
            userId: local.id,
            meta: r.ctx.meta,
            detail: linkDetail(identity, 'automatic'),
            at: now,
          }),
        ]);
        mailLinked(deps, local.email, p, identity, r.defer);
        return { kind: 'signed_in', outcome, returnTo: request.returnTo };
      }
      const back = `/auth/upstream/link?${new URLSearchParams({ return_to: request.returnTo ?? '/auth/account' })}`;
      await mailWithinLimit(
        deps,
        identity.email,
        r.ctx.meta,
        { type: 'identity_link_requested', userId: local.id, detail: linkDetail(identity, 'requested') },
        () =>
          identityLinkRequestMail(local.email, {
            provider: p.displayName,
            account: identity.email ?? identity.name ?? identity.subject,
            link: authUrl(deps.config, back),
            minutes: PENDING_LINK_TTL / 60,
          }),
      );
      return {
        kind: 'check_email',
        email: identity.email,
        pendingLink: await pendingLink(deps, identity),
        // Matches no pending sign-up: only there so that this answer sets the same cookies as the one below.
        signUpBinding: randomToken(32),
        returnTo: request.returnTo,
      };
    }
    if (!identity.emailTrusted) {
      const signUpBinding = await pendingSignUp(deps, identity, p, r.ctx.meta);
      // A pending link as above (the same cookie): it links this upstream account only to an account
      // that signs in here and confirms, as any pending link does.
      const pending = await pendingLink(deps, identity);
      return { kind: 'check_email', email: identity.email, pendingLink: pending, signUpBinding, returnTo: request.returnTo };
    }
  }
  const user = await createAccount(deps, identity, r.ctx.meta);
  const outcome = await signIn(deps, user, p, r.ctx, r.defer, []);
  return { kind: 'signed_in', outcome, returnTo: request.returnTo };
}

function signIn(
  deps: Deps,
  user: User,
  p: UpstreamProvider,
  ctx: SignInContext,
  defer: (task: Promise<void>) => void,
  statements: BatchItem<'sqlite'>[],
) {
  // amr `fed` (RFC 8176: federated); the second factor and the client's rules apply as to any first factor.
  return completeFirstFactor(deps, user, ['fed'], ctx, { defer, statements, detail: { method: 'upstream', provider: p.id } });
}

const linkDetail = (i: UpstreamIdentity, how: string) => ({ provider: i.providerId, issuer: i.issuer, subject: i.subject, how });

async function sealedTokens(deps: Deps, i: UpstreamIdentity, identityId: string): Promise<string | null> {
  return i.tokens ? seal(deps.config.keyEncryptionKey, tokensAad(i.providerId, identityId), JSON.stringify(i.tokens)) : null;
}

/**
 * The upstream's claims that matter, refreshed at each sign-in (and its tokens, when kept); a name
 * is kept when none comes (Apple sends it at the first authorization only). Built, not run: the
 * caller puts it in a batch. (An async function must never return a query: awaiting it would run it.)
 */
function refreshStatement(deps: Deps, identityId: string, i: UpstreamIdentity, now: number, sealedTokens: string | null) {
  return deps.db
    .update(linkedIdentities)
    .set({
      email: i.email,
      emailVerified: i.emailVerified,
      ...(i.name !== null ? { name: i.name } : {}),
      picture: i.picture,
      lastSignInAt: now,
      ...(sealedTokens ? { tokensEncrypted: sealedTokens } : {}),
    })
    .where(eq(linkedIdentities.id, identityId));
}

/** A new link's row (built, not run), its tokens sealed beforehand when kept. */
function newLinkStatement(deps: Deps, link: { id: string; userId: string; sealedTokens: string | null }, i: UpstreamIdentity, now: number) {
  return deps.db.insert(linkedIdentities).values({
    id: link.id,
    userId: link.userId,
    providerId: i.providerId,
    issuer: i.issuer,
    subject: i.subject,
    email: i.email,
    emailVerified: i.emailVerified,
    name: i.name,
    picture: i.picture,
    tokensEncrypted: link.sealedTokens,
    createdAt: now,
    lastSignInAt: now,
  });
}

/** A fresh link id and the identity's tokens sealed for it. */
async function newLink(deps: Deps, userId: string, i: UpstreamIdentity) {
  const id = randomToken(16);
  return { id, userId, sealedTokens: await sealedTokens(deps, i, id) };
}

function mailLinked(deps: Deps, to: string, p: UpstreamProvider, i: UpstreamIdentity, defer: (task: Promise<void>) => void) {
  const address = shownEmail(to);
  if (address)
    defer(
      deps.mailer.send(
        identityLinkedMail(address, {
          provider: p.displayName,
          account: i.email ?? i.name ?? i.subject,
          accountLink: authUrl(deps.config, '/auth/account'),
        }),
      ),
    );
}

/**
 * Links an upstream identity to a user (from the account page, or confirming a pending link): an
 * identity already linked to someone else is refused, one already theirs refreshed. Audited and
 * mailed; one batch.
 */
export async function linkToUser(
  deps: Deps,
  userId: string,
  identity: UpstreamIdentity,
  p: UpstreamProvider,
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
): Promise<void> {
  const now = deps.now();
  const existing = await failClosed('the database', () => findLinkedIdentity(deps.db, identity.issuer, identity.subject));
  if (existing && existing.userId !== userId)
    throw new GatehouseError('identity_in_use', `That ${p.displayName} account is already linked to another account here.`);
  const user = await failClosed('the database', () => findUserById(deps.db, userId));
  if (!user) throw new GatehouseError('unauthenticated', 'Sign in again.');
  const write = existing
    ? refreshStatement(deps, existing.id, identity, now, await sealedTokens(deps, identity, existing.id))
    : newLinkStatement(deps, await newLink(deps, userId, identity), identity, now);
  await failClosed('the database', async () => {
    await deps.db.batch([
      write,
      auditInsert(deps.db, {
        type: 'identity_linked',
        userId,
        meta,
        detail: linkDetail(identity, existing ? 'again' : 'confirmed'),
        at: now,
      }),
    ]);
  });
  if (!existing) mailLinked(deps, user.email, p, identity, defer);
}

/** The identity waiting for the person to prove the account it would be linked to (a signed cookie value). */
async function pendingLink(deps: Deps, i: UpstreamIdentity): Promise<string> {
  const now = Math.floor(deps.now() / 1000);
  const { tokens: _tokens, ...claims } = i;
  return new SignJWT({ identity: claims })
    .setProtectedHeader({ alg: 'HS256', typ: PENDING_LINK_TYPE })
    .setIssuedAt(now)
    .setExpirationTime(now + PENDING_LINK_TTL)
    .sign(deps.keys.pending);
}

/** What the confirm page names a pending link by, so its form confirms that one only. */
export const pendingLinkId = async (token: string) => (await sha256(token)).slice(0, 22);

/** A pending link's identity; null when it is missing, forged or expired. */
export async function readPendingLink(deps: Deps, token: string | undefined): Promise<Omit<UpstreamIdentity, 'tokens'> | null> {
  if (!token || token.length > 8192) return null;
  try {
    const { payload } = await jwtVerify(token, deps.keys.pending, {
      algorithms: ['HS256'],
      typ: PENDING_LINK_TYPE,
      currentDate: new Date(deps.now()),
    });
    const i = payload.identity as UpstreamIdentity | undefined;
    return i && typeof i.issuer === 'string' && typeof i.subject === 'string' && typeof i.providerId === 'string' ? i : null;
  } catch {
    return null;
  }
}

/**
 * The person proved the account (signed in to it just now) and confirms: the pending identity is
 * linked to the signed-in account.
 */
export async function confirmPendingLink(
  deps: Deps,
  session: SessionClaims,
  r: { token: string | undefined; shown: string | undefined; proof: Proof | undefined },
  meta: RequestMeta,
  defer: (task: Promise<void>) => void,
) {
  const identity = await readPendingLink(deps, r.token);
  if (!identity) throw new GatehouseError('invalid_link', 'This link request has expired. Sign in with that account again to link it.');
  // The identity the page showed, not another that a second tab put in the cookie since.
  if (!r.shown || !timingSafeEqualString(r.shown, await pendingLinkId(r.token!)))
    throw new GatehouseError('invalid_link', 'Another link request replaced this one. Look at it again before you confirm.');
  await authorizeSensitiveAction(deps, session, r.proof, meta);
  const p = await providerOrNotFound(deps, identity.providerId);
  await linkToUser(deps, session.sub, { ...identity, tokens: null }, p, meta, defer);
  return { provider: p.displayName };
}

/**
 * Mail to an address, within its limit (docs/security.md "No account enumeration"): counted, and
 * audited (`mail_suppressed` instead past the limit, when nothing is sent). Returns whether it went.
 */
async function mailWithinLimit(
  deps: Deps,
  email: string,
  meta: RequestMeta,
  event: { type: AuditType; userId: string | null; detail: Record<string, unknown> },
  mail: () => Mail | Promise<Mail>,
): Promise<boolean> {
  const now = deps.now();
  const held = await failClosed('the database', () => mailLimitReached(deps.db, email, now));
  await failClosed('the database', async () => {
    await recordAttempt(deps.db, 'mail', email, now);
    await auditInsert(deps.db, { type: held ? 'mail_suppressed' : event.type, userId: event.userId, meta, detail: event.detail, at: now });
  });
  if (!held) await deps.mailer.send(await mail());
  return !held;
}

/**
 * A new account through an upstream that did not verify the address (or is not trusted for its
 * domain): like a password sign-up, nothing exists until the mailed link is opened — then the
 * account is made, verified, and the identity linked only if the link is opened in this browser
 * (the returned binding, kept as a hash with the pending sign-up: auth/email-verification.ts).
 * Anyone can make an upstream account claim an address; the mailbox's owner opening an unsolicited
 * mail must not link a stranger's identity into their new account. The mail names the upstream account.
 */
async function pendingSignUp(deps: Deps, i: UpstreamIdentity, p: UpstreamProvider, meta: RequestMeta): Promise<string> {
  const email = i.email!;
  const binding = randomToken(32);
  const { tokens: _tokens, ...identity } = i;
  await mailWithinLimit(deps, email, meta, { type: 'sign_up_requested', userId: null, detail: { via: i.providerId } }, async () => {
    const token = await failClosed('the database', async () =>
      issueEmailToken(deps.db, {
        purpose: 'verify_email',
        email,
        userId: null,
        upstreamIdentity: JSON.stringify({ ...identity, bindingHash: await sha256(binding) }),
        now: deps.now(),
      }),
    );
    return upstreamSignUpMail(email, {
      provider: p.displayName,
      account: i.email ?? i.name ?? i.subject,
      link: authUrl(deps.config, '/auth/verify-email', { token }),
      minutes: EMAIL_TOKEN_TTL.verify_email / 60,
    });
  });
  return binding;
}

/** A new account from an upstream identity: verified when the upstream is trusted for the address; none when it shared none. */
async function createAccount(deps: Deps, i: UpstreamIdentity, meta: RequestMeta): Promise<User> {
  const now = deps.now();
  const id = newUserId();
  const email = i.email ?? placeholderEmail(id);
  const link = await newLink(deps, id, i);
  await failClosed('the database', async () => {
    await deps.db.batch([
      deps.db.insert(users).values({
        id,
        email,
        emailVerifiedAt: i.email && i.emailTrusted ? now : null,
        passwordHash: null,
        name: i.name,
        picture: i.picture,
        createdAt: now,
        updatedAt: now,
      }),
      newLinkStatement(deps, link, i, now),
      auditInsert(deps.db, {
        type: 'sign_up',
        userId: id,
        meta,
        detail: { via: i.providerId, email: i.email ? 'verified' : 'none' },
        at: now,
      }),
      auditInsert(deps.db, { type: 'identity_linked', userId: id, meta, detail: linkDetail(i, 'sign_up'), at: now }),
    ]);
  });
  const user = await failClosed('the database', () => findUserById(deps.db, id));
  return user!;
}
