/**
 * Issue, list and revoke API keys — for callers that cannot do OAuth:
 *   npm run api-keys -- create --resource URI (--user EMAIL | --client CLIENT_ID) --name NAME [--scope S ...] [--expires-in DAYS]
 *   npm run api-keys -- list [--user EMAIL | --client CLIENT_ID | --resource URI]
 *   npm run api-keys -- revoke --id ID
 * The key is printed once, at creation; only a hash of its secret is stored. A revocation reaches a
 * running worker's isolates within 60 s (at once on `fresh` routes).
 */
import { ZodError } from 'zod';
import { apiKeys, apiResources, clientResources } from '../src/db/schema';
import { apiKeyIdOf, buildApiKey, describeApiKey, type ApiKeyOwner } from '../src/oauth/api-keys';
import { resourceFromRow } from '../src/oauth/api-resources';
import { parseFlags, runAsScript, usageFor } from './lib/cli';
import { insertSql, rowFromSql } from './lib/sql';
import { d1Query, sqlString, type Target } from './lib/wrangler';

const USAGE = `Usage: npm run api-keys -- create --resource URI (--user EMAIL | --client CLIENT_ID) --name NAME [options]
       npm run api-keys -- list [--user EMAIL | --client CLIENT_ID | --resource URI]
       npm run api-keys -- revoke --id ID

A key is for one API (a registered resource: npm run resources) and acts as a user or as a client
acting for itself. Gateway routes take keys where their policy says "apiKeys" and names that API in
"audiences". The key is shown once; keep it like a password.

Options:
  --resource URI     the API the key is for
  --user EMAIL       the key acts as this user (their roles and tier reach the origin)
  --client ID        the key acts as this client (a machine: no user)
  --name NAME        what the key is for, shown in lists
  --scope S          (repeatable) scopes of the API the key carries; a client's key only scopes the
                     client was granted for that API
  --expires-in DAYS  the key stops working after this many days (default: until revoked)
  --id ID            (revoke) the key's id: the part after gk_ in its prefix
  --remote           use the deployed D1 database instead of the local one
  --persist-to DIR   local D1 state directory`;

const usage: (problem: string) => never = usageFor(USAGE);

function owner(target: Target, user: string | undefined, client: string | undefined): ApiKeyOwner {
  if ((user === undefined) === (client === undefined)) usage('give exactly one of --user and --client');
  if (user !== undefined) {
    const row = d1Query<{ id: string }>(target, `SELECT id FROM users WHERE email = ${sqlString(user.trim().toLowerCase())}`)[0];
    if (!row) usage(`--user: no account with the address ${user}`);
    return { kind: 'user', userId: row.id };
  }
  const clientId = client!;
  const row = d1Query<{ token_endpoint_auth_method: string; grant_types: string }>(
    target,
    `SELECT token_endpoint_auth_method, grant_types FROM oauth_clients WHERE client_id = ${sqlString(clientId)}`,
  )[0];
  if (!row) usage(`--client: no client with client_id ${clientId}`);
  const grants = d1Query(target, `SELECT * FROM client_resources WHERE client_id = ${sqlString(clientId)}`).map((g) =>
    rowFromSql(clientResources, g),
  );
  return {
    kind: 'client',
    client: {
      clientId,
      isPublic: row.token_endpoint_auth_method === 'none',
      grantTypes: JSON.parse(row.grant_types) as string[],
      resources: grants.map((g) => g.resource),
      resourceScopes: Object.fromEntries(grants.map((g) => [g.resource, JSON.parse(g.scopes) as string[]])),
    },
  };
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const values = parseFlags(
    rest,
    {
      resource: { type: 'string' },
      user: { type: 'string' },
      client: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', multiple: true, default: [] },
      'expires-in': { type: 'string' },
      id: { type: 'string' },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  const now = Date.now();

  if (command === 'create') {
    const id = values.resource ?? usage('--resource is required');
    const raw = d1Query(target, `SELECT * FROM api_resources WHERE identifier = ${sqlString(id)}`)[0];
    if (!raw) usage(`--resource: ${id} is not a registered API (npm run resources -- create)`);
    const days = values['expires-in'];
    if (days !== undefined && !/^\d{1,5}$/.test(days)) usage('--expires-in must be a whole number of days');
    let built: Awaited<ReturnType<typeof buildApiKey>>;
    try {
      built = await buildApiKey(
        { name: values.name ?? '', scopes: values.scope, expiresAt: days === undefined ? null : now + Number(days) * 86_400_000 },
        owner(target, values.user, values.client),
        resourceFromRow(rowFromSql(apiResources, raw)),
        now,
      );
    } catch (e) {
      if (!(e instanceof ZodError)) throw e;
      const flag: Record<string, string> = {
        name: '--name',
        scopes: '--scope',
        expiresAt: '--expires-in',
        resource: '--client',
        client: '--client',
      };
      const issue = e.issues[0]!;
      return usage(`${flag[String(issue.path[0])] ?? String(issue.path[0])}: ${issue.message}`);
    }
    d1Query(target, insertSql(apiKeys, built.row));
    console.log(JSON.stringify({ ...describeApiKey(built.row), key: built.key }, null, 2));
    console.error('The key is shown this once: store it now.');
    return;
  }

  if (command === 'list') {
    const where: string[] = [];
    if (values.user !== undefined)
      where.push(`user_id = (SELECT id FROM users WHERE email = ${sqlString(values.user.trim().toLowerCase())})`);
    if (values.client !== undefined) where.push(`client_id = ${sqlString(values.client)}`);
    if (values.resource !== undefined) where.push(`resource = ${sqlString(values.resource)}`);
    const rows = d1Query(target, `SELECT * FROM api_keys${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC`);
    console.log(
      JSON.stringify(
        rows.map((r) => describeApiKey(rowFromSql(apiKeys, r))),
        null,
        2,
      ),
    );
    return;
  }

  if (command === 'revoke') {
    const id = apiKeyIdOf(values.id ?? usage('--id is required')) ?? usage('--id must be a key id (the 16 characters after gk_)');
    const revoked = d1Query(
      target,
      `UPDATE api_keys SET revoked_at = ${now} WHERE id = ${sqlString(id)} AND revoked_at IS NULL RETURNING *`,
    )[0];
    if (!revoked) {
      console.error(`error: no live key with id ${id}`);
      process.exit(1);
    }
    console.log(JSON.stringify(describeApiKey(rowFromSql(apiKeys, revoked)), null, 2));
    return;
  }
  usage(command ? `unknown command "${command}"` : 'missing command');
}

runAsScript(import.meta.url, main);
