import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { and, desc, eq, lt, or, sql } from 'drizzle-orm';
import { passkeys, webauthnChallenges } from '../db/schema';
import type { Deps } from '../deps';
import { audit, auditInsert, type RequestMeta } from '../identity/audit';
import { shownEmail } from '../identity/email';
import { passkeyRemovalStatements } from '../identity/second-factors';
import { type ChangeBy, runStatements } from '../identity/user-records';
import { base64url, decodeBase64urlText, fromBase64url, randomToken } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';

/** A challenge is good for one ceremony within five minutes. */
export const CHALLENGE_TTL_MS = 5 * 60_000;
export const MAX_PASSKEYS_PER_USER = 20;

/** A passkey assertion as the browser script posts it (schemas.ts validates its shape). */
export interface PasskeyAssertion {
  challengeId: string;
  response: AuthenticationResponseJSON;
}

export interface PasskeyView {
  id: string;
  name: string;
  createdAt: number;
  lastUsedAt: number | null;
  backedUp: boolean;
}

const rejected = (message: string) => new GatehouseError('invalid_passkey', message);
const challengeGone = () => new GatehouseError('invalid_challenge', 'This passkey request has expired or was already used. Try again.');

async function storeChallenge(deps: Deps, challenge: string, purpose: 'register' | 'authenticate', userId: string | null): Promise<string> {
  const id = randomToken(16);
  const now = deps.now();
  await failClosed('the database', async () => {
    // Expired challenges are purged by the scheduled handler (src/db/retention.ts); takeChallenge refuses them.
    await deps.db.insert(webauthnChallenges).values({ id, challenge, purpose, userId, expiresAt: now + CHALLENGE_TTL_MS });
  });
  return id;
}

/** Takes a challenge out (DELETE … RETURNING: of two uses, one gets it); null when unknown, used or expired. */
async function takeChallenge(deps: Deps, id: string, purpose: 'register' | 'authenticate') {
  if (!/^[A-Za-z0-9_-]{22}$/.test(id)) return null;
  const [row] = await failClosed('the database', () =>
    deps.db
      .delete(webauthnChallenges)
      .where(and(eq(webauthnChallenges.id, id), eq(webauthnChallenges.purpose, purpose)))
      .returning(),
  );
  return row && row.expiresAt > deps.now() ? row : null;
}

export async function listPasskeys(deps: Deps, userId: string): Promise<PasskeyView[]> {
  return failClosed('the database', () =>
    deps.db
      .select({
        id: passkeys.id,
        name: passkeys.name,
        createdAt: passkeys.createdAt,
        lastUsedAt: passkeys.lastUsedAt,
        backedUp: passkeys.backedUp,
      })
      .from(passkeys)
      .where(eq(passkeys.userId, userId))
      .orderBy(desc(passkeys.createdAt))
      .all(),
  );
}

/** Options for navigator.credentials.create(): a discoverable credential, existing ones excluded. */
export async function registrationOptions(
  deps: Deps,
  user: { id: string; email: string },
): Promise<{ challengeId: string; options: PublicKeyCredentialCreationOptionsJSON }> {
  const existing = await failClosed('the database', () =>
    deps.db.select({ id: passkeys.id, transports: passkeys.transports }).from(passkeys).where(eq(passkeys.userId, user.id)).all(),
  );
  if (existing.length >= MAX_PASSKEYS_PER_USER)
    throw new GatehouseError('invalid_request', `An account can have at most ${MAX_PASSKEYS_PER_USER} passkeys. Remove one first.`);
  const options = await generateRegistrationOptions({
    rpName: deps.config.webauthn.rpName,
    rpID: deps.config.webauthn.rpId,
    // An account without an address (upstream sign-in) has a placeholder no one should see.
    userName: shownEmail(user.email) ?? `${deps.config.webauthn.rpName} account`,
    userID: new TextEncoder().encode(user.id) as Uint8Array<ArrayBuffer>,
    attestationType: 'none',
    timeout: CHALLENGE_TTL_MS,
    excludeCredentials: existing.map((p) => ({ id: p.id, transports: JSON.parse(p.transports) as string[] })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
  });
  return { challengeId: await storeChallenge(deps, options.challenge, 'register', user.id), options };
}

/** Verifies a registration (challenge, origin, RP ID) and stores the new passkey. */
export async function registerPasskey(
  deps: Deps,
  userId: string,
  input: { challengeId: string; response: RegistrationResponseJSON; name: string },
  meta: RequestMeta,
): Promise<PasskeyView> {
  const challenge = await takeChallenge(deps, input.challengeId, 'register');
  if (!challenge || challenge.userId !== userId) throw challengeGone();
  let info: Awaited<ReturnType<typeof verifyRegistrationResponse>>['registrationInfo'];
  try {
    const result = await verifyRegistrationResponse({
      response: input.response,
      expectedChallenge: challenge.challenge,
      expectedOrigin: deps.config.webauthn.origins,
      expectedRPID: deps.config.webauthn.rpId,
      requireUserVerification: false,
    });
    if (!result.verified) throw new Error('not verified');
    info = result.registrationInfo;
  } catch (e) {
    await failClosed('the database', () =>
      audit(deps.db, { type: 'passkey_rejected', userId, meta, detail: { ceremony: 'register', reason: reasonOf(e) }, at: deps.now() }),
    );
    throw rejected(`The passkey could not be verified: ${reasonOf(e)}.`);
  }
  const now = deps.now();
  const row = {
    id: info.credential.id,
    userId,
    name: input.name,
    publicKey: base64url(info.credential.publicKey),
    counter: info.credential.counter,
    transports: JSON.stringify(info.credential.transports ?? []),
    backedUp: info.credentialBackedUp,
    createdAt: now,
    lastUsedAt: null,
  };
  const inserted = await failClosed('the database', async () => {
    const [result] = await deps.db.batch([
      deps.db.insert(passkeys).values(row).onConflictDoNothing().returning({ id: passkeys.id }),
      auditInsert(deps.db, { type: 'passkey_added', userId, meta, detail: { passkey: row.id, name: row.name }, at: now }),
    ]);
    return result.length > 0;
  });
  if (!inserted) throw new GatehouseError('already_enrolled', 'This passkey is already registered.');
  return { id: row.id, name: row.name, createdAt: now, lastUsedAt: null, backedUp: row.backedUp };
}

/** Options for navigator.credentials.get() with no allow-list: the authenticator offers its passkeys. */
export async function authenticationOptions(deps: Deps): Promise<{ challengeId: string; options: PublicKeyCredentialRequestOptionsJSON }> {
  const options = await generateAuthenticationOptions({
    rpID: deps.config.webauthn.rpId,
    userVerification: 'preferred',
    timeout: CHALLENGE_TTL_MS,
  });
  return { challengeId: await storeChallenge(deps, options.challenge, 'authenticate', null), options };
}

/**
 * Verifies a passkey assertion: the challenge is taken (single use), the signature checked against
 * the stored key for this RP ID and an allowed origin, and the signature counter must move forward
 * — a counter that does not (a cloned authenticator) is refused and audited. The counter update is
 * a compare-and-set, so two concurrent uses of one assertion cannot both pass.
 */
export async function verifyPasskey(deps: Deps, input: PasskeyAssertion, meta: RequestMeta): Promise<{ userId: string; amr: string[] }> {
  const challenge = await takeChallenge(deps, input.challengeId, 'authenticate');
  if (!challenge) throw challengeGone();
  const stored = await failClosed('the database', () => deps.db.select().from(passkeys).where(eq(passkeys.id, input.response.id)).get());
  if (!stored) throw rejected('This passkey is not registered here (it may have been removed).');
  const fail = async (reason: string) => {
    await failClosed('the database', () =>
      audit(deps.db, {
        type: 'passkey_rejected',
        userId: stored.userId,
        meta,
        detail: { ceremony: 'authenticate', passkey: stored.id, reason },
        at: deps.now(),
      }),
    );
    return rejected(`The passkey could not be verified: ${reason}.`);
  };
  const userHandle = input.response.response.userHandle;
  if (userHandle) {
    const handle = decodeBase64urlText(userHandle);
    if (handle === null)
      throw new GatehouseError('invalid_request', 'response.response.userHandle is not base64url of a user id.', {
        field: 'response.response.userHandle',
      });
    if (handle !== stored.userId) throw await fail('it belongs to another account');
  }

  let result: Awaited<ReturnType<typeof verifyAuthenticationResponse>>;
  try {
    result = await verifyAuthenticationResponse({
      response: input.response,
      expectedChallenge: challenge.challenge,
      expectedOrigin: deps.config.webauthn.origins,
      expectedRPID: deps.config.webauthn.rpId,
      credential: {
        id: stored.id,
        publicKey: fromBase64url(stored.publicKey),
        counter: stored.counter,
        transports: JSON.parse(stored.transports) as string[],
      },
      requireUserVerification: false,
    });
  } catch (e) {
    throw await fail(reasonOf(e));
  }
  if (!result.verified) throw await fail('the signature is not valid');
  const { newCounter, userVerified } = result.authenticationInfo;
  // Counter: either both zero (an authenticator that does not count, e.g. synced passkeys) or strictly increasing.
  const updated = await failClosed('the database', () =>
    deps.db
      .update(passkeys)
      .set({ counter: newCounter, lastUsedAt: deps.now() })
      .where(and(eq(passkeys.id, stored.id), or(lt(passkeys.counter, newCounter), and(eq(passkeys.counter, 0), sql`${newCounter} = 0`))))
      .returning({ id: passkeys.id }),
  );
  if (updated.length === 0) throw await fail('its signature counter went backwards (a cloned authenticator?)');
  return { userId: stored.userId, amr: userVerified ? ['hwk', 'user'] : ['hwk'] };
}

/** Removes one of the user's passkeys (404 when it is not theirs). */
export async function removePasskey(
  deps: Deps,
  userId: string,
  id: string,
  meta: RequestMeta,
  by: Omit<ChangeBy, 'meta'> = { actor: null },
): Promise<void> {
  const removed = await failClosed('the database', async () => {
    const [, rows] = await runStatements(deps.db, passkeyRemovalStatements(deps.db, userId, id, { ...by, meta }, deps.now()));
    return (rows as unknown[]).length > 0;
  });
  if (removed) return;
  const mine = and(eq(passkeys.id, id), eq(passkeys.userId, userId))!;
  const exists = await failClosed('the database', () => deps.db.select({ id: passkeys.id }).from(passkeys).where(mine).get());
  if (!exists) throw new GatehouseError('not_found', 'No such passkey on this account.', { field: 'id' });
  throw new GatehouseError('last_sign_in_method', 'This passkey is the only way to sign in to your account: add another first.');
}

/** The library's message names what failed (challenge, origin, RP ID, signature, counter); no secrets in it. */
function reasonOf(e: unknown): string {
  const message = e instanceof Error ? e.message : 'unknown error';
  return message.replace(/\.$/, '').slice(0, 200);
}
