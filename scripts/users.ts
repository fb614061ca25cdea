/**
 * Operator bootstrap without the UI:
 *   npm run users -- create --email E --password P [--verified] [--role R ...] [--tier T] [--if-missing] [--remote]
 *   npm run users -- set --email E [--role R ...] [--no-roles] [--tier T] [--remote]
 *   npm run users -- reset-mfa --email E [--passkeys] [--remote]
 * Creates the user in the local D1 (the one `npm run dev` uses) or, with --remote, the deployed one,
 * and prints it as JSON. Bad arguments print the usage and exit 2.
 *
 * The writes are the worker's own statements (src/identity/user-records.ts, second-factors.ts),
 * turned into SQL text for `wrangler d1 execute`: a rule lives in one place, whoever runs it.
 * Blocking and deleting also reach the user's Durable Object, which only the worker can: they are
 * the admin API's (docs/admin-api.md "Users").
 */
import { readFile } from 'node:fs/promises';
import { createPasswordHasher } from '../src/auth/argon2';
import { ASSETS_DIRECTORY, COMMON_PASSWORDS_ASSET } from '../src/auth/common-passwords';
import { checkNewPassword, createCommonPasswords } from '../src/auth/password-policy';
import { assertPersonalAddress, emailField } from '../src/identity/email';
import { ROLE_NAME } from '../src/identity/profile';
import { secondFactorResetStatements } from '../src/identity/second-factors';
import { type ChangeBy, newUserStatements, type Statement, userChangeStatements } from '../src/identity/user-records';
import { newUserId } from '../src/identity/users';
import { GatehouseError } from '../src/lib/errors';
import { loadArgon2Node } from './lib/argon2-node';
import { parseFlags, runAsScript, usageFor } from './lib/cli';
import { statementBuilder, statementSql } from './lib/sql';
import { d1Query, ROOT, sqlString, type Target } from './lib/wrangler';

const USAGE = `Usage: npm run users -- create --email EMAIL --password PASSWORD [options]
       npm run users -- set --email EMAIL [--role ROLE ...] [--no-roles] [--tier TIER] [--remote]
       npm run users -- reset-mfa --email EMAIL [--passkeys] [--remote]

'reset-mfa' removes the user's authenticator app and recovery codes (and, with --passkeys, every
passkey) — for someone who lost them, after you have verified who they are another way.
'set' replaces the user's roles (with the --role values given, or none with --no-roles) and/or tier;
roles and tier appear in access tokens, ID tokens (scope profile) and userinfo.
Every change is audited with the actor 'cli'. To block, unblock or delete a user, or to end their
sessions, use the admin API (docs/admin-api.md, "Users"): those reach the user's Durable Object,
which this command cannot.

Options:
  --verified        mark the email address as verified
  --role ROLE       grant a role (repeatable), e.g. --role admin
  --tier TIER       set the tier (default: free)
  --if-missing      if the email already has an account, print it and exit 0
  --remote          use the deployed D1 database instead of the local one
  --persist-to DIR  local D1 state directory (default: wrangler's .wrangler/state)`;

const ROLE = ROLE_NAME;
/** Commands that are the admin API's, and where they are there. */
const ADMIN_ONLY: Record<string, string> = {
  block: 'POST /auth/admin/v1/users/{id}/block',
  unblock: 'POST /auth/admin/v1/users/{id}/unblock',
  delete: 'DELETE /auth/admin/v1/users/{id}',
};
/** The CLI as the audit log names it. */
const CLI: ChangeBy = { actor: 'cli', meta: { ip: null, userAgent: null }, detail: { via: 'cli' } };
const db = statementBuilder();
/** Runs statements in one `wrangler d1 execute` call (one transaction, as the worker's D1 batch). */
const run = (target: Target, statements: Statement[]) => d1Query(target, statements.map(statementSql).join(';\n'));

// Annotated so that TypeScript treats a call as the end of the path.
const usage: (problem: string) => never = usageFor(USAGE);

interface UserRow {
  id: string;
  email: string;
  email_verified_at: number | null;
  tier: string;
  created_at: number;
}

function show(target: Target, email: string) {
  const user = d1Query<UserRow>(
    target,
    `SELECT id, email, email_verified_at, tier, created_at FROM users WHERE email = ${sqlString(email)}`,
  )[0];
  if (!user) return undefined;
  const roles = d1Query<{ role: string }>(target, `SELECT role FROM user_roles WHERE user_id = ${sqlString(user.id)} ORDER BY role`);
  return {
    id: user.id,
    email: user.email,
    emailVerified: user.email_verified_at !== null,
    roles: roles.map((r) => r.role),
    tier: user.tier,
    createdAt: user.created_at,
    secondFactors: secondFactors(target, user.id),
  };
}

function secondFactors(target: Target, userId: string) {
  const id = sqlString(userId);
  const [row] = d1Query<{ totp: number; codes: number; passkeys: number }>(
    target,
    `SELECT (SELECT count(*) FROM totp_credentials WHERE user_id = ${id} AND confirmed_at IS NOT NULL) AS totp,
            (SELECT count(*) FROM recovery_codes WHERE user_id = ${id} AND used_at IS NULL) AS codes,
            (SELECT count(*) FROM passkeys WHERE user_id = ${id}) AS passkeys`,
  );
  return { totp: (row?.totp ?? 0) > 0, recoveryCodesLeft: row?.codes ?? 0, passkeys: row?.passkeys ?? 0 };
}

/** The account named by --email (usage error when missing or malformed; exit 1 when there is none). */
function requireUser(target: Target, flag: string | undefined) {
  if (!flag) usage('--email is required');
  const email = emailField.safeParse(flag);
  if (!email.success) usage(`--email: ${email.error.issues[0]!.message}`);
  const user = show(target, email.data);
  if (!user) {
    console.error(`error: no user with email ${email.data}`);
    process.exit(1);
  }
  return user;
}

async function resetMfa(args: string[]): Promise<void> {
  const values = parseFlags(
    args,
    {
      email: { type: 'string' },
      passkeys: { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  const user = requireUser(target, values.email);
  run(target, secondFactorResetStatements(db, user.id, { passkeys: values.passkeys }, CLI, Date.now()));
  console.log(JSON.stringify(show(target, user.email), null, 2));
}

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'set') return setUser(rest);
  if (command === 'reset-mfa') return resetMfa(rest);
  const viaApi = ADMIN_ONLY[command ?? ''];
  if (viaApi) usage(`"${command}" reaches the user's Durable Object, which only the worker can: use the admin API, ${viaApi}`);
  if (command !== 'create') usage(command ? `unknown command "${command}"` : 'missing command');
  const values = parseFlags(
    rest,
    {
      email: { type: 'string' },
      password: { type: 'string' },
      verified: { type: 'boolean', default: false },
      role: { type: 'string', multiple: true, default: [] },
      tier: { type: 'string', default: 'free' },
      'if-missing': { type: 'boolean', default: false },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  if (!values.email) usage('--email is required');
  if (values.password === undefined) usage('--password is required');
  const email = emailField.safeParse(values.email);
  if (!email.success) usage(`--email: ${email.error.issues[0]!.message}`);
  for (const role of values.role) if (!ROLE.test(role)) usage(`--role "${role}" must match ${ROLE}`);
  if (!ROLE.test(values.tier)) usage(`--tier "${values.tier}" must match ${ROLE}`);
  // The same blocklist the worker reads through its ASSETS binding, from the file wrangler uploads.
  const list = createCommonPasswords(async () => new Uint8Array(await readFile(`${ROOT}${ASSETS_DIRECTORY}${COMMON_PASSWORDS_ASSET}`)));
  try {
    assertPersonalAddress(email.data);
    await checkNewPassword(list, values.password, 8);
  } catch (e) {
    if (e instanceof GatehouseError) usage(e.extra.field === 'email' ? `--${e.message}` : `--password: ${e.message}`);
    throw e;
  }

  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  const existing = show(target, email.data);
  if (existing) {
    if (values['if-missing']) {
      console.log(JSON.stringify(existing, null, 2));
      return;
    }
    console.error(`error: a user with email ${email.data} already exists`);
    process.exit(1);
  }

  const hash = await createPasswordHasher(loadArgon2Node).hash(values.password);
  const user = {
    id: newUserId(),
    email: email.data,
    passwordHash: hash,
    emailVerified: values.verified,
    roles: values.role,
    tier: values.tier,
  };
  run(target, newUserStatements(db, user, CLI, Date.now()));
  console.log(JSON.stringify(show(target, email.data), null, 2));
}

async function setUser(args: string[]): Promise<void> {
  const values = parseFlags(
    args,
    {
      email: { type: 'string' },
      role: { type: 'string', multiple: true },
      'no-roles': { type: 'boolean', default: false },
      tier: { type: 'string' },
      remote: { type: 'boolean', default: false },
      'persist-to': { type: 'string' },
    },
    usage,
  );
  if (values.role && values['no-roles']) usage('--role and --no-roles exclude each other');
  if (!values.role && !values['no-roles'] && values.tier === undefined) usage('nothing to set: give --role, --no-roles or --tier');
  for (const role of values.role ?? []) if (!ROLE.test(role)) usage(`--role "${role}" must match ${ROLE}`);
  if (values.tier !== undefined && !ROLE.test(values.tier)) usage(`--tier "${values.tier}" must match ${ROLE}`);

  const target: Target = { remote: values.remote, persistTo: values['persist-to'] };
  const user = requireUser(target, values.email);
  const roles = values.role || values['no-roles'] ? { roles: values.role ?? [] } : {};
  run(
    target,
    userChangeStatements(db, user.id, { ...roles, ...(values.tier !== undefined ? { tier: values.tier } : {}) }, CLI, Date.now()),
  );
  console.log(JSON.stringify(show(target, user.email), null, 2));
}

runAsScript(import.meta.url, main);
