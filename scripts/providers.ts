/**
 * Upstream identity providers (social and enterprise sign-in):
 *   npm run providers -- add --id ID --kind KIND --name NAME --client-id ID [--client-secret S] [options]
 *   npm run providers -- list | show --id ID | remove --id ID | enable --id ID | disable --id ID
 *   npm run providers -- clients --id ID --client CLIENT_ID [--share-tokens] [--remove]
 * Client secrets (and Apple's key) are sealed with KEY_ENCRYPTION_KEY before they are stored.
 */
import { readFileSync } from 'node:fs';
import { ZodError } from 'zod';
import { clientProviders, identityProviders } from '../src/db/schema';
import {
  buildProvider,
  callbackPath,
  describeProvider,
  PROVIDER_KINDS,
  providerFromRow,
  type ProviderInput,
} from '../src/auth/upstream-providers';
import { parseFlags, runAsScript, usageFor } from './lib/cli';
import { keyEncryptionKey } from './lib/kek';
import { insertSql, rowFromSql, upsertSql } from './lib/sql';
import { d1Query, ROOT, sqlString, type Target } from './lib/wrangler';

const USAGE = `Usage: npm run providers -- add --id ID --kind KIND --name NAME --client-id ID [options]
       npm run providers -- list
       npm run providers -- show --id ID
       npm run providers -- enable --id ID | disable --id ID | remove --id ID
       npm run providers -- clients --id ID --client CLIENT_ID [--share-tokens] [--remove]

Kinds: ${PROVIDER_KINDS.join(', ')} (oidc: any OpenID Provider, found by --issuer's discovery).
After add, register the printed callback_url as the redirect URI at the provider.
A client's sign-in page shows the buttons of the providers listed for it (clients); Gatehouse's own
sign-in page shows every enabled provider. With --share-tokens the client may also read the
provider's kept access tokens for its users (GET /auth/upstream-token; the provider needs --store-tokens).

Options (add; replaces a provider with the same id):
  --id ID                     2–32 of a-z 0-9 -: names the callback URL (/auth/upstream/ID/callback)
  --kind KIND                 oidc, google, entra, apple or github
  --name NAME                 the button's text: "Continue with NAME"
  --icon-url URL              an https URL of the button's icon
  --issuer URL                (oidc) the issuer to discover
  --tenant T                  (entra) common (default), organizations, consumers or a tenant id
  --allow-tenant ID           (entra, repeatable) with common or organizations: only these tenants
  --client-id ID              the client id at the provider
  --client-secret S           the client secret (not for apple)
  --apple-team-id ID --apple-key-id ID --apple-key-file FILE
                              (apple) the team, the key id and the key (.p8) for the ES256 client secret
  --scope S                   (repeatable) scopes to ask (default: the kind's)
  --trusted-domain D          (repeatable) addresses of this domain (or * for any) that the provider
                              verifies may link to existing accounts at once (docs/authentication.md)
  --store-tokens              keep the provider's tokens (sealed) for apps to call its API
  --disabled                  add it disabled
Common:
  --remote                    the deployed D1 (KEY_ENCRYPTION_KEY from the environment)
  --persist-to DIR            local D1 state directory`;

const usage: (problem: string) => never = usageFor(USAGE);

function publicUrl(): string {
  // The callback URL is Gatehouse's: PUBLIC_URL from .dev.vars locally, from the environment otherwise.
  if (process.env.PUBLIC_URL) return process.env.PUBLIC_URL.replace(/\/$/, '');
  try {
    return (/^PUBLIC_URL=(.+)$/m.exec(readFileSync(`${ROOT}.dev.vars`, 'utf8'))?.[1] ?? 'http://localhost:8787').trim().replace(/\/$/, '');
  } catch {
    return 'http://localhost:8787';
  }
}

function find(target: Target, id: string) {
  const raw = d1Query(target, `SELECT * FROM identity_providers WHERE id = ${sqlString(id)}`)[0];
  return raw ? providerFromRow(rowFromSql(identityProviders, raw)) : undefined;
}

const show = (target: Target, id: string) => {
  const p = find(target, id)!;
  const clients = d1Query<{ client_id: string; share_tokens: number }>(
    target,
    `SELECT client_id, share_tokens FROM client_providers WHERE provider_id = ${sqlString(id)} ORDER BY client_id`,
  );
  console.log(
    JSON.stringify(
      {
        ...describeProvider(p, `${publicUrl()}${callbackPath(p.id)}`),
        clients: clients.map((c) => ({ client_id: c.client_id, share_tokens: c.share_tokens === 1 })),
      },
      null,
      2,
    ),
  );
};

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const values = parseFlags(
    rest,
    {
      id: { type: 'string' },
      kind: { type: 'string' },
      name: { type: 'string' },
      'icon-url': { type: 'string' },
      issuer: { type: 'string' },
      tenant: { type: 'string' },
      'allow-tenant': { type: 'string', multiple: true, default: [] },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'apple-team-id': { type: 'string' },
      'apple-key-id': { type: 'string' },
      'apple-key-file': { type: 'string' },
      scope: { type: 'string', multiple: true },
      'trusted-domain': { type: 'string', multiple: true, default: [] },
      'store-tokens': { type: 'boolean', default: false },
      disabled: { type: 'boolean', default: false },
      client: { type: 'string' },
      remove: { type: 'boolean', default: false },
      'share-tokens': { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  if (command === 'list') {
    const rows = d1Query(target, 'SELECT * FROM identity_providers ORDER BY id');
    console.log(
      JSON.stringify(
        rows.map((r) => describeProvider(providerFromRow(rowFromSql(identityProviders, r)), `${publicUrl()}${callbackPath(String(r.id))}`)),
        null,
        2,
      ),
    );
    return;
  }
  const id = values.id ?? usage('--id is required');

  if (command === 'add') {
    let appleKey: string | undefined;
    if (values['apple-key-file'])
      try {
        appleKey = readFileSync(values['apple-key-file'], 'utf8');
      } catch (e) {
        usage(`--apple-key-file: ${(e as Error).message}`);
      }
    const input: ProviderInput = {
      id,
      kind: (values.kind ?? usage('--kind is required')) as ProviderInput['kind'],
      displayName: values.name ?? '',
      clientId: values['client-id'] ?? '',
      ...(values['icon-url'] ? { iconUrl: values['icon-url'] } : {}),
      ...(values.issuer ? { issuer: values.issuer } : {}),
      ...(values.tenant ? { tenant: values.tenant } : {}),
      tenants: values['allow-tenant'],
      ...(values['client-secret'] ? { clientSecret: values['client-secret'] } : {}),
      ...(values['apple-team-id'] || values['apple-key-id'] || appleKey
        ? { apple: { teamId: values['apple-team-id'] ?? '', keyId: values['apple-key-id'] ?? '', privateKey: appleKey ?? '' } }
        : {}),
      ...(values.scope ? { scopes: values.scope } : {}),
      trustedEmailDomains: values['trusted-domain'],
      storeTokens: values['store-tokens'],
      enabled: !values.disabled,
    };
    let row: Awaited<ReturnType<typeof buildProvider>>;
    try {
      row = await buildProvider(input, keyEncryptionKey(values.remote, usage), Date.now());
    } catch (e) {
      if (!(e instanceof ZodError)) throw e;
      const flag: Record<string, string> = {
        id: '--id',
        kind: '--kind',
        displayName: '--name',
        iconUrl: '--icon-url',
        issuer: '--issuer',
        tenant: '--tenant',
        tenants: '--allow-tenant',
        clientId: '--client-id',
        clientSecret: '--client-secret',
        apple: '--apple-team-id/--apple-key-id/--apple-key-file',
        scopes: '--scope',
        trustedEmailDomains: '--trusted-domain',
      };
      const issue = e.issues[0]!;
      return usage(`${flag[String(issue.path[0])] ?? String(issue.path[0])}: ${issue.message}`);
    }
    // Replacing a provider keeps when it was added.
    d1Query(target, upsertSql(identityProviders, row, ['id'], ['createdAt']));
    return show(target, id);
  }

  if (!find(target, id)) {
    console.error(`error: no provider with id ${id} (npm run providers -- list)`);
    process.exit(1);
  }
  if (command === 'show') return show(target, id);
  if (command === 'enable' || command === 'disable') {
    d1Query(
      target,
      `UPDATE identity_providers SET enabled = ${command === 'enable' ? 1 : 0}, updated_at = ${Date.now()} WHERE id = ${sqlString(id)}`,
    );
    return show(target, id);
  }
  if (command === 'remove') {
    // Linked identities stay (an account keeps them if the provider comes back); they cannot sign in meanwhile.
    d1Query(target, `DELETE FROM identity_providers WHERE id = ${sqlString(id)}`);
    console.log(JSON.stringify({ removed: id }));
    return;
  }
  if (command === 'clients') {
    const clientId = values.client ?? usage('--client is required');
    if (!d1Query(target, `SELECT client_id FROM oauth_clients WHERE client_id = ${sqlString(clientId)}`).length)
      usage(`--client: no client with client_id ${clientId}`);
    d1Query(
      target,
      values.remove
        ? `DELETE FROM client_providers WHERE client_id = ${sqlString(clientId)} AND provider_id = ${sqlString(id)}`
        : `${insertSql(clientProviders, { clientId, providerId: id, shareTokens: values['share-tokens'] === true })}
           ON CONFLICT (client_id, provider_id) DO UPDATE SET share_tokens = excluded.share_tokens`,
    );
    return show(target, id);
  }
  usage(command ? `unknown command "${command}"` : 'missing command');
}

runAsScript(import.meta.url, main);
