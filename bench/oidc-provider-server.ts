/**
 * panva's oidc-provider, configured like Gatehouse for the benchmark: one confidential client
 * (client_secret_basic), client_credentials and rotating refresh tokens, ES256 JWT access tokens,
 * RS256 ID tokens, in-memory storage. Run as a child process (`node --import tsx
 * bench/oidc-provider-server.ts N`): listens on a free loopback port, mints N refresh tokens, prints
 * `{ issuer, refreshTokens }` as one JSON line, then serves.
 */
import { createServer } from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
const es = await generateKeyPair('ES256', { extractable: true });
const rs = await generateKeyPair('RS256', { extractable: true });
const RESOURCE = 'https://api.bench';
/** The ID tokens' algorithm (argv: count, then RS256 or ES256), as Gatehouse's client is set. */
const ID_TOKEN_ALG = process.argv[3] === 'ES256' ? 'ES256' : 'RS256';

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: 'bench',
      client_secret: 'bench-client-secret-bench-client-secret',
      grant_types: ['client_credentials', 'refresh_token', 'authorization_code'],
      redirect_uris: ['https://app.bench/callback'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: ID_TOKEN_ALG,
    },
  ],
  jwks: {
    keys: [
      { ...(await exportJWK(es.privateKey)), alg: 'ES256', use: 'sig' },
      { ...(await exportJWK(rs.privateKey)), alg: 'RS256', use: 'sig' },
    ],
  },
  scopes: ['openid', 'offline_access', 'profile', 'api'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api openid profile',
        accessTokenFormat: 'jwt',
        accessTokenTTL: 600,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  rotateRefreshToken: true,
  issueRefreshToken: () => true,
  ttl: { RefreshToken: 14 * 86400, AccessToken: 600, IdToken: 3600, ClientCredentials: 600, Grant: 90 * 86400 },
  findAccount: async (_ctx: unknown, sub: string) => ({ accountId: sub, claims: async () => ({ sub }) }),
});

/** Mints refresh tokens directly through the provider's models (what a finished code flow leaves). */
async function mintRefreshTokens(count: number): Promise<string[]> {
  const client = await provider.Client.find('bench');
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const grant = new provider.Grant({ accountId: `user-${i}`, clientId: 'bench' });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(RESOURCE, 'api');
    const grantId = await grant.save();
    const token = new provider.RefreshToken({
      accountId: `user-${i}`,
      client: client!,
      grantId,
      scope: 'openid offline_access',
      resource: RESOURCE,
      gty: 'authorization_code',
      authTime: Math.floor(Date.now() / 1000),
    } as never);
    out.push(await token.save());
  }
  return out;
}

server.on('request', provider.callback());
const refreshTokens = await mintRefreshTokens(Number(process.argv[2] ?? 16));
process.stdout.write(`${JSON.stringify({ issuer, refreshTokens })}\n`);
process.on('SIGTERM', () => process.exit(0));
