/**
 * Register OAuth/OIDC clients without the UI:
 *   npm run clients -- create --name N --redirect-uri U [--redirect-uri U2] [--public] [--first-party]
 *                     [--grant G ...] [--scope S ...] [options]
 * Prints the client as JSON with its client_id and, for a confidential client, its client_secret —
 * shown this once; only a hash is stored.
 */
import { readFileSync } from 'node:fs';
import { ZodError } from 'zod';
import { apiResources, clientResources, oauthClients } from '../src/db/schema';
import { resourceFromRow, resourceGrantProblems } from '../src/oauth/api-resources';
import { buildClient, describeClient } from '../src/oauth/client-registration';
import { parseFlags, runAsScript, usageFor } from './lib/cli';
import { insertSql, rowFromSql } from './lib/sql';
import { d1Query, sqlString, type Target } from './lib/wrangler';

const USAGE = `Usage: npm run clients -- create --name NAME --redirect-uri URI [options]

Options:
  --redirect-uri URI              (repeatable) exact redirect URI; http only for loopback
  --post-logout-redirect-uri URI  (repeatable) where RP-initiated logout may return
  --public                        a public client (native/SPA): no secret, PKCE only
  --first-party                   skip the consent page
  --require-mfa                   every sign-in for this client needs a second factor
  --pkce-optional                 (confidential only) OpenID requests may use nonce instead of PKCE
                                  (RFC 9700 §2.1.1; for certification runs — see docs/oidc.md)
  --id-token-claims               put the claims the scopes release in the ID token too
  --require-par                   authorization requests must be pushed first (RFC 9126)
  --require-dpop                  access tokens must be DPoP-bound (RFC 9449)
  --grant GRANT                   (repeatable) authorization_code, refresh_token, client_credentials
                                  (default: authorization_code refresh_token)
  --scope SCOPE                   (repeatable) openid, profile, email, roles, offline_access (default: openid profile email)
  --resource URI[=SCOPE,...]      (repeatable) a registered API (npm run resources) the client may ask
                                  access tokens for, and the scopes of it it may be given
  --serves URI                    (repeatable) a resource this client is (an API): it may introspect its tokens
  --auth-method METHOD            client_secret_basic (default), client_secret_post, private_key_jwt
  --jwks-file FILE                the client's public keys (JWKS JSON), for private_key_jwt
  --id-token-alg ALG              RS256 (default) or ES256
  --access-token-format FORMAT    jwt (default) or opaque (the phantom-token pattern)
  --access-token-ttl SECONDS      access-token lifetime for this client (default: ACCESS_TOKEN_TTL)
  --refresh-idle-ttl SECONDS      refresh-token idle lifetime (default: REFRESH_TOKEN_IDLE_TTL)
  --refresh-absolute-ttl SECONDS  refresh-token absolute lifetime (default: REFRESH_TOKEN_ABSOLUTE_TTL)
  --client-id ID                  choose the client_id (default: random)
  --client-secret SECRET          choose the secret, ≥ 32 characters (default: random 256 bits)
  --if-missing                    if the client_id exists, print it (without secret) and exit 0
  --remote                        use the deployed D1 database instead of the local one
  --persist-to DIR                local D1 state directory`;

const seconds = (flag: string, v: string) => (/^\d{1,9}$/.test(v) ? Number(v) : usage(`${flag} must be a whole number of seconds`));

// Annotated so that TypeScript treats a call as the end of the path.
const usage: (problem: string) => never = usageFor(USAGE);

function existing(target: Target, clientId: string) {
  const raw = d1Query(target, `SELECT * FROM oauth_clients WHERE client_id = ${sqlString(clientId)}`)[0];
  if (!raw) return undefined;
  const grants = d1Query(target, `SELECT * FROM client_resources WHERE client_id = ${sqlString(clientId)}`);
  return describeClient(
    rowFromSql(oauthClients, raw),
    grants.map((g) => rowFromSql(clientResources, g)),
  );
}

/** `URI` or `URI=scope,scope`: the scopes follow the last `=` when they read as a list of scopes. */
function resourceFlag(value: string) {
  const at = value.lastIndexOf('=');
  const tail = at > 0 ? value.slice(at + 1) : '';
  if (at > 0 && /^[A-Za-z0-9._:/-]+(,[A-Za-z0-9._:/-]+)*$/.test(tail)) return { resource: value.slice(0, at), scopes: tail.split(',') };
  return value;
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command !== 'create') usage(command ? `unknown command "${command}"` : 'missing command');
  const values = parseFlags(
    rest,
    {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true, default: [] },
      'post-logout-redirect-uri': { type: 'string', multiple: true, default: [] },
      public: { type: 'boolean', default: false },
      'first-party': { type: 'boolean', default: false },
      'require-mfa': { type: 'boolean', default: false },
      'pkce-optional': { type: 'boolean', default: false },
      'id-token-claims': { type: 'boolean', default: false },
      'require-par': { type: 'boolean', default: false },
      'require-dpop': { type: 'boolean', default: false },
      grant: { type: 'string', multiple: true },
      scope: { type: 'string', multiple: true },
      resource: { type: 'string', multiple: true, default: [] },
      serves: { type: 'string', multiple: true, default: [] },
      'auth-method': { type: 'string' },
      'jwks-file': { type: 'string' },
      'id-token-alg': { type: 'string' },
      'access-token-format': { type: 'string' },
      'access-token-ttl': { type: 'string' },
      'refresh-idle-ttl': { type: 'string' },
      'refresh-absolute-ttl': { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'if-missing': { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  let jwks: unknown;
  if (values['jwks-file']) {
    try {
      jwks = JSON.parse(readFileSync(values['jwks-file'], 'utf8'));
    } catch (e) {
      usage(`--jwks-file: ${(e as Error).message}`);
    }
  }
  let built: Awaited<ReturnType<typeof buildClient>>;
  try {
    built = await buildClient(
      {
        name: values.name ?? '',
        redirectUris: values['redirect-uri'],
        postLogoutRedirectUris: values['post-logout-redirect-uri'],
        public: values.public,
        firstParty: values['first-party'],
        requireMfa: values['require-mfa'],
        requirePkce: !values['pkce-optional'],
        idTokenClaims: values['id-token-claims'],
        requirePar: values['require-par'],
        requireDpop: values['require-dpop'],
        resources: values.resource.map(resourceFlag),
        serves: values.serves,
        ...(values.grant ? { grantTypes: values.grant } : {}),
        ...(values.scope ? { scopes: values.scope as never } : {}),
        ...(values['auth-method'] ? { authMethod: values['auth-method'] as never } : {}),
        ...(jwks ? { jwks: jwks as never } : {}),
        ...(values['id-token-alg'] ? { idTokenAlg: values['id-token-alg'] as never } : {}),
        ...(values['access-token-format'] ? { accessTokenFormat: values['access-token-format'] as never } : {}),
        ...(values['access-token-ttl'] ? { accessTokenTtl: seconds('--access-token-ttl', values['access-token-ttl']) } : {}),
        ...(values['refresh-idle-ttl'] ? { refreshTokenIdleTtl: seconds('--refresh-idle-ttl', values['refresh-idle-ttl']) } : {}),
        ...(values['refresh-absolute-ttl']
          ? { refreshTokenAbsoluteTtl: seconds('--refresh-absolute-ttl', values['refresh-absolute-ttl']) }
          : {}),
        ...(values['client-id'] ? { clientId: values['client-id'] } : {}),
        ...(values['client-secret'] ? { clientSecret: values['client-secret'] } : {}),
      },
      Date.now(),
    );
  } catch (e) {
    if (e instanceof ZodError) {
      const flag: Record<string, string> = {
        accessTokenFormat: '--access-token-format',
        accessTokenTtl: '--access-token-ttl',
        refreshTokenIdleTtl: '--refresh-idle-ttl',
        refreshTokenAbsoluteTtl: '--refresh-absolute-ttl',
        redirectUris: '--redirect-uri',
        postLogoutRedirectUris: '--post-logout-redirect-uri',
        grantTypes: '--grant',
        scopes: '--scope',
        authMethod: '--auth-method',
        idTokenAlg: '--id-token-alg',
        clientId: '--client-id',
        clientSecret: '--client-secret',
        name: '--name',
        jwks: '--jwks-file',
        resources: '--resource',
        serves: '--serves',
        requirePkce: '--pkce-optional',
      };
      const issue = e.issues[0]!;
      usage(`${flag[String(issue.path[0])] ?? String(issue.path[0])}: ${issue.message}`);
    }
    throw e;
  }

  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  const found = existing(target, built.row.clientId);
  if (found) {
    if (values['if-missing']) {
      console.log(JSON.stringify(found, null, 2));
      return;
    }
    console.error(`error: a client with client_id ${built.row.clientId} already exists`);
    process.exit(1);
  }
  const registered = new Map(
    built.grants.length
      ? d1Query(
          target,
          `SELECT * FROM api_resources WHERE identifier IN (${built.grants.map((g) => sqlString(g.resource)).join(', ')})`,
        ).map((raw) => {
          const r = resourceFromRow(rowFromSql(apiResources, raw));
          return [r.identifier, r] as const;
        })
      : [],
  );
  const problems = resourceGrantProblems(
    built.grants.map((g) => ({ resource: g.resource, scopes: JSON.parse(g.scopes) as string[] })),
    (id) => registered.get(id),
  );
  if (problems.length) usage(`--resource: ${problems.join('; ')}`);
  d1Query(target, [insertSql(oauthClients, built.row), ...built.grants.map((g) => insertSql(clientResources, g))].join(';\n'));
  console.log(
    JSON.stringify(
      { ...describeClient(built.row, built.grants), ...(built.clientSecret ? { client_secret: built.clientSecret } : {}) },
      null,
      2,
    ),
  );
}

runAsScript(import.meta.url, main);
