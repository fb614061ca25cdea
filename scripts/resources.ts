/**
 * Register the APIs Gatehouse issues access tokens for (RFC 8707 resources), and which clients may
 * ask for which of their scopes:
 *   npm run resources -- create --id URI --name NAME [--scope NAME[=DESCRIPTION] ...] [options]
 *   npm run resources -- update --id URI [options]
 *   npm run resources -- grant --id URI --client CLIENT_ID [--scope NAME ...]
 *   npm run resources -- revoke --id URI --client CLIENT_ID
 *   npm run resources -- list | show --id URI | delete --id URI
 * Changes reach a running worker's isolates within 30 s (docs/oidc.md "Records in the isolate").
 */
import { ZodError } from 'zod';
import { apiResources, clientResources } from '../src/db/schema';
import {
  buildResource,
  describeResource,
  prunedGrants,
  resourceFromRow,
  resourceGrantProblems,
  type ApiResource,
  type ResourceInput,
} from '../src/oauth/api-resources';
import { parseFlags, runAsScript, usageFor } from './lib/cli';
import { insertSql, rowFromSql } from './lib/sql';
import { d1Query, sqlString, type Target } from './lib/wrangler';

const USAGE = `Usage: npm run resources -- create --id URI --name NAME [options]
       npm run resources -- update --id URI [options]
       npm run resources -- grant --id URI --client CLIENT_ID [--scope NAME ...]
       npm run resources -- revoke --id URI --client CLIENT_ID
       npm run resources -- list
       npm run resources -- show --id URI
       npm run resources -- delete --id URI

An API (resource server) is named by its identifier, the "aud" of its access tokens: an https URL or
a URN (http only for localhost). Gateway routes accept its tokens by naming it in "audiences".

Options (create, update):
  --name NAME                 shown on consent pages
  --scope NAME[=DESCRIPTION]  (repeatable) a scope of this API, e.g. --scope 'orders:read=Read your orders';
                              with update, the list replaces the old one (clients lose scopes it drops)
  --token-format FORMAT       jwt (default) or opaque (the phantom-token pattern) for this API's tokens
  --token-ttl SECONDS         lifetime of this API's access tokens (the shorter of this and the client's wins);
                              "default" with update: the client's or the server default
  --rate-limit N/SECONDS      token requests per client for this API at the token endpoint, e.g. 600/60;
                              "none" with update
  --if-missing                (create) if the API exists, print it and exit 0
Grant options:
  --client CLIENT_ID          the client that may ask tokens for this API
  --scope NAME                (repeatable) the scopes of the API it may be given (none: OpenID scopes only);
                              replaces what it had
Common:
  --remote                    use the deployed D1 database instead of the local one
  --persist-to DIR            local D1 state directory`;

const usage: (problem: string) => never = usageFor(USAGE);

function find(target: Target, id: string): ApiResource | undefined {
  const raw = d1Query(target, `SELECT * FROM api_resources WHERE identifier = ${sqlString(id)}`)[0];
  return raw ? resourceFromRow(rowFromSql(apiResources, raw)) : undefined;
}

function clientsOf(target: Target, id: string) {
  return d1Query(target, `SELECT * FROM client_resources WHERE resource = ${sqlString(id)} ORDER BY client_id`).map((raw) => {
    const g = rowFromSql(clientResources, raw);
    return { client_id: g.clientId, scopes: JSON.parse(g.scopes) as string[] };
  });
}

const show = (target: Target, r: ApiResource) =>
  console.log(JSON.stringify({ ...describeResource(r), clients: clientsOf(target, r.identifier) }, null, 2));

function scopeFlag(value: string) {
  const at = value.indexOf('=');
  return at < 0 ? { name: value, description: null } : { name: value.slice(0, at), description: value.slice(at + 1) };
}

function rateFlag(value: string) {
  const m = /^(\d{1,7})\/(\d{1,5})$/.exec(value);
  return m ? { requests: Number(m[1]), period: Number(m[2]) } : usage('--rate-limit must look like 600/60 (requests/seconds)');
}

const ttlFlag = (value: string) => (/^\d{1,9}$/.test(value) ? Number(value) : usage('--token-ttl must be a whole number of seconds'));

/** Builds the row, turning a validation failure into the flag it came from. */
function build(input: ResourceInput, now: number) {
  try {
    return buildResource(input, now);
  } catch (e) {
    if (!(e instanceof ZodError)) throw e;
    const flag: Record<string, string> = {
      identifier: '--id',
      name: '--name',
      scopes: '--scope',
      accessTokenTtl: '--token-ttl',
      accessTokenFormat: '--token-format',
      rateLimit: '--rate-limit',
    };
    const issue = e.issues[0]!;
    const where = issue.path.length > 1 ? ` (${issue.path.slice(1).join('.')})` : '';
    return usage(`${flag[String(issue.path[0])] ?? String(issue.path[0])}${where}: ${issue.message}`);
  }
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const values = parseFlags(
    rest,
    {
      id: { type: 'string' },
      name: { type: 'string' },
      scope: { type: 'string', multiple: true },
      'token-format': { type: 'string' },
      'token-ttl': { type: 'string' },
      'rate-limit': { type: 'string' },
      client: { type: 'string' },
      'if-missing': { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  if (command === 'list') {
    const rows = d1Query(target, 'SELECT * FROM api_resources ORDER BY identifier');
    console.log(
      JSON.stringify(
        rows.map((raw) => describeResource(resourceFromRow(rowFromSql(apiResources, raw)))),
        null,
        2,
      ),
    );
    return;
  }
  const id = values.id ?? usage('--id is required');
  const now = Date.now();
  const current = find(target, id);

  if (command === 'create') {
    if (current) {
      if (values['if-missing']) return show(target, current);
      console.error(`error: an API with identifier ${id} already exists (use update)`);
      process.exit(1);
    }
    const row = build(
      {
        identifier: id,
        name: values.name ?? '',
        scopes: (values.scope ?? []).map(scopeFlag),
        ...(values['token-format'] ? { accessTokenFormat: values['token-format'] as never } : {}),
        ...(values['token-ttl'] ? { accessTokenTtl: ttlFlag(values['token-ttl']) } : {}),
        ...(values['rate-limit'] ? { rateLimit: rateFlag(values['rate-limit']) } : {}),
      },
      now,
    );
    d1Query(target, insertSql(apiResources, row));
    return show(target, resourceFromRow(row));
  }

  if (!current) {
    console.error(`error: no API with identifier ${id} (npm run resources -- list)`);
    process.exit(1);
  }

  if (command === 'update') {
    const ttl = values['token-ttl'];
    const rate = values['rate-limit'];
    const row = build(
      {
        identifier: id,
        name: values.name ?? current.name,
        scopes: values.scope ? values.scope.map(scopeFlag) : current.scopes,
        accessTokenFormat: (values['token-format'] as never) ?? current.accessTokenFormat,
        accessTokenTtl: ttl === undefined ? current.accessTokenTtl : ttl === 'default' ? null : ttlFlag(ttl),
        rateLimit: rate === undefined ? current.rateLimit : rate === 'none' ? null : rateFlag(rate),
      },
      now,
    );
    // A scope the API no longer defines leaves every client's grant with it.
    const prune = prunedGrants(resourceFromRow(row).scopes, clientsOf(target, id)).map(
      (g) =>
        `UPDATE client_resources SET scopes = ${sqlString(JSON.stringify(g.scopes))} WHERE client_id = ${sqlString(g.client_id)} AND resource = ${sqlString(id)}`,
    );
    d1Query(
      target,
      [
        `UPDATE api_resources SET name = ${sqlString(row.name)}, scopes = ${sqlString(row.scopes)}, access_token_ttl = ${row.accessTokenTtl ?? 'NULL'}, access_token_format = ${sqlString(row.accessTokenFormat)}, rate_limit = ${sqlString(row.rateLimit)}, updated_at = ${now} WHERE identifier = ${sqlString(id)}`,
        ...prune,
      ].join(';\n'),
    );
    return show(target, find(target, id)!);
  }

  if (command === 'grant' || command === 'revoke') {
    const clientId = values.client ?? usage('--client is required');
    if (!d1Query(target, `SELECT client_id FROM oauth_clients WHERE client_id = ${sqlString(clientId)}`).length) {
      console.error(`error: no client with client_id ${clientId}`);
      process.exit(1);
    }
    if (command === 'revoke') {
      d1Query(target, `DELETE FROM client_resources WHERE client_id = ${sqlString(clientId)} AND resource = ${sqlString(id)}`);
      return show(target, current);
    }
    const scopes = [...new Set(values.scope ?? [])];
    const problems = resourceGrantProblems([{ resource: id, scopes }], () => current);
    if (problems.length) usage(`--scope: ${problems.join('; ')}`);
    d1Query(
      target,
      `${insertSql(clientResources, { clientId, resource: id, scopes: JSON.stringify(scopes) })} ON CONFLICT (client_id, resource) DO UPDATE SET scopes = excluded.scopes`,
    );
    return show(target, current);
  }

  if (command === 'show') return show(target, current);
  if (command === 'delete') {
    // Its client grants and API keys go with it (ON DELETE CASCADE); tokens already issued live out their lifetime.
    d1Query(target, `DELETE FROM api_resources WHERE identifier = ${sqlString(id)}`);
    console.log(JSON.stringify({ deleted: id }));
    return;
  }
  usage(command ? `unknown command "${command}"` : 'missing command');
}

runAsScript(import.meta.url, main);
