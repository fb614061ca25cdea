import { and, desc, eq, isNotNull } from 'drizzle-orm';
import { findProvider } from '../auth/upstream-provider-records';
import { refreshTokens, type UpstreamIdentity } from '../auth/upstream-protocol';
import { tokensAad } from '../auth/upstream-providers';
import { clientProviders, linkedIdentities } from '../db/schema';
import type { Deps } from '../deps';
import { seal, unseal } from '../lib/crypto';
import { failClosed, GatehouseError } from '../lib/errors';
import { invalidToken, isAccessTokenLive, isMachineToken, issuerOf, verifyAccessToken } from '../tokens/access-token';
import { checkSenderConstraint } from '../tokens/dpop';

type Tokens = NonNullable<UpstreamIdentity['tokens']>;

/** Renewed this long before the upstream's access token would expire, so the app never gets one about to. */
const RENEW_BEFORE_S = 60;

/**
 * The access token an upstream gave the user, for an app to call that upstream's API on their
 * behalf (a provider set to keep tokens). The app presents an access token Gatehouse issued to it
 * for the user (audience Gatehouse, Bearer or DPoP as it is bound, still live); the operator must
 * have let that client read the provider's tokens (client_providers.share_tokens). Only the access
 * token leaves: the upstream's refresh token is Gatehouse's (the upstream issued it to Gatehouse's
 * client), used here to renew an expired access token.
 */
export async function upstreamAccessToken(
  deps: Deps,
  presented: { scheme: 'Bearer' | 'DPoP'; token: string },
  request: { proof: string | undefined; method: string; url: string },
  providerId: string,
): Promise<{ access_token: string; token_type: 'Bearer'; expires_in?: number; scope?: string }> {
  const claims = await verifyAccessToken(deps, presented.token, { audience: [issuerOf(deps)] });
  await checkSenderConstraint(deps, { ...presented, ...request, claims });
  if (isMachineToken(claims)) throw new GatehouseError('insufficient_scope', 'A machine token acts for no user.');
  if (!(await isAccessTokenLive(deps, claims))) throw invalidToken('The access token has been revoked.');
  const now = deps.now();
  const p = await failClosed('the database', () => findProvider(deps.db, providerId, now));
  if (!p?.storeTokens) throw new GatehouseError('not_found', `No provider ${JSON.stringify(providerId)} keeps tokens.`);
  const shared = await failClosed('the database', () =>
    deps.db
      .select({ shareTokens: clientProviders.shareTokens })
      .from(clientProviders)
      .where(and(eq(clientProviders.clientId, String(claims.client_id)), eq(clientProviders.providerId, p.id)))
      .get(),
  );
  if (!shared?.shareTokens) throw new GatehouseError('insufficient_scope', `This client may not use ${p.displayName} tokens.`);
  // The identity the user last signed in with, of those at this provider that have tokens kept.
  const identity = await failClosed('the database', () =>
    deps.db
      .select({ id: linkedIdentities.id, sealed: linkedIdentities.tokensEncrypted })
      .from(linkedIdentities)
      .where(
        and(eq(linkedIdentities.userId, claims.sub), eq(linkedIdentities.providerId, p.id), isNotNull(linkedIdentities.tokensEncrypted)),
      )
      .orderBy(desc(linkedIdentities.lastSignInAt))
      .get(),
  );
  const reauth = () => new GatehouseError('upstream_reauth_required', `The user must sign in with ${p.displayName} again for its tokens.`);
  if (!identity?.sealed) throw reauth();
  const aad = tokensAad(p.id, identity.id);
  let tokens = JSON.parse(await unseal(deps.config.keyEncryptionKey, aad, identity.sealed)) as Tokens;
  const nowS = Math.floor(now / 1000);
  if (tokens.expires_at !== undefined && tokens.expires_at - RENEW_BEFORE_S <= nowS) {
    const renewed = tokens.refresh_token
      ? await refreshTokens({ kek: deps.config.keyEncryptionKey, fetch: deps.fetch, now: deps.now }, p, tokens.refresh_token)
      : null;
    // Kept only if no one else renewed first (compare-and-set); either answer is a good token.
    const sealed = renewed ? await seal(deps.config.keyEncryptionKey, aad, JSON.stringify(renewed)) : null;
    await failClosed('the database', () =>
      deps.db
        .update(linkedIdentities)
        .set({ tokensEncrypted: sealed })
        .where(and(eq(linkedIdentities.id, identity.id), eq(linkedIdentities.tokensEncrypted, identity.sealed!)))
        .run(),
    );
    if (!renewed) throw reauth();
    tokens = renewed;
  }
  return {
    access_token: tokens.access_token,
    token_type: 'Bearer',
    ...(tokens.expires_at !== undefined ? { expires_in: Math.max(0, tokens.expires_at - nowS) } : {}),
    ...(tokens.scope ? { scope: tokens.scope } : {}),
  };
}
