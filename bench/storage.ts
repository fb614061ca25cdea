/**
 * npm run bench:storage — the storage budget (docs/operations.md, "Storage budget"): seeds a
 * local D1 database (Miniflare, migrations/ applied) with users in a realistic mix and audit events,
 * then reads the database file's pages per table and index (SQLite's dbstat, through node:sqlite:
 * D1 itself does not expose it) and prints bytes per user by feature, bytes per audit event, and
 * users per 10 GB database.
 *
 * Options: --users N (default 10000), --events N audit events (default 50000).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { convertV4MiniflareOptions, Miniflare } from 'miniflare';
import { applyMigrationsTo, benchArgs, COMPATIBILITY_DATE, fmt } from './harness';

const { args, command } = benchArgs('bench:storage', { users: 10_000, events: 50_000 });

/** `n` random characters (hex): stored strings as long as the real ones. */
const rnd = (n: number) => `substr(hex(randomblob(${Math.ceil(n / 2)})), 1, ${n})`;
const uuid = `lower(${rnd(8)} || '-' || ${rnd(4)} || '-4' || ${rnd(3)} || '-a' || ${rnd(3)} || '-' || ${rnd(12)})`;
const T0 = 1_780_000_000_000;

/**
 * The mix, per user: every account verified, 80% with a password (argon2id PHC, 97 characters),
 * half with a name; 12% with a role; sign-in history of 3 devices, a country and a network; 25%
 * with passkeys (1.5 each on average); 10% with an authenticator app and its 10 recovery codes;
 * 30% with a linked social identity; 20% with a remembered consent.
 */
const SEED: [feature: string, sql: string][] = [
  [
    'users',
    `INSERT INTO users (id, email, email_verified_at, password_hash, tier, name, given_name, family_name, locale, created_at, updated_at, last_sign_in_at)
     SELECT ${uuid}, 'user' || i || '.' || ${rnd(6)} || '@example-mail.com', ${T0} + i,
       CASE WHEN i % 5 <> 0 THEN '$argon2id$v=19$m=19456,t=2,p=1$' || ${rnd(22)} || '$' || ${rnd(43)} END,
       CASE WHEN i % 10 = 0 THEN 'gold' ELSE 'free' END,
       CASE WHEN i % 2 = 0 THEN 'Firstname Lastname' END, CASE WHEN i % 2 = 0 THEN 'Firstname' END, CASE WHEN i % 2 = 0 THEN 'Lastname' END,
       CASE WHEN i % 3 = 0 THEN 'fr-FR' END, ${T0} + i, ${T0} + i, ${T0} + i
     FROM n`,
  ],
  [
    'user_roles',
    `INSERT INTO user_roles (user_id, role) SELECT id, CASE WHEN rowid % 50 = 0 THEN 'admin' ELSE 'beta' END FROM u WHERE rowid % 8 = 0`,
  ],
  [
    'sign_in_history',
    `INSERT INTO sign_in_history (user_id, marker, first_seen_at, last_seen_at)
     SELECT id, CASE WHEN j <= 3 THEN 'device:' || ${rnd(43)} WHEN j = 4 THEN 'country:FR' ELSE 'asn:13335' END, ${T0}, ${T0}
     FROM u, (WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 5) SELECT j FROM k)`,
  ],
  [
    'passkeys',
    `INSERT INTO passkeys (id, user_id, name, public_key, counter, transports, backed_up, created_at, last_used_at)
     SELECT ${rnd(43)} || k, id, 'iCloud Keychain', ${rnd(103)}, 0, '["internal","hybrid"]', 1, ${T0}, ${T0}
     FROM u, (SELECT 1 AS k UNION ALL SELECT 2) WHERE rowid % 4 = 0 AND (k = 1 OR rowid % 8 = 0)`,
  ],
  [
    'totp_credentials',
    `INSERT INTO totp_credentials (user_id, secret_encrypted, last_step, confirmed_at, created_at)
     SELECT id, ${rnd(70)}, 59_000_000, ${T0}, ${T0} FROM u WHERE rowid % 10 = 1`,
  ],
  [
    'recovery_codes',
    `INSERT INTO recovery_codes (user_id, code_hash, used_at, created_at)
     SELECT id, ${rnd(43)}, NULL, ${T0} FROM u, (WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 10) SELECT j FROM k)
     WHERE rowid % 10 = 1`,
  ],
  [
    'linked_identities',
    `INSERT INTO linked_identities (id, user_id, provider_id, issuer, subject, email, email_verified, name, picture, created_at, last_sign_in_at)
     SELECT ${rnd(22)}, id, 'google', 'https://accounts.google.com', ${rnd(21)}, email, 1, 'Firstname Lastname',
       'https://lh3.googleusercontent.com/a/' || ${rnd(60)}, ${T0}, ${T0} FROM u WHERE rowid % 10 IN (2, 5, 8)`,
  ],
  [
    'consents',
    `INSERT INTO consents (user_id, client_id, scopes, resources, granted_at)
     SELECT id, 'storage-bench-app', '["openid","profile","email"]', '{}', ${T0} FROM u WHERE rowid % 5 = 3`,
  ],
];

/** Two audit rows per sign-in (sign_in_risk and sign_in), with the detail the code writes. */
const AUDIT = `INSERT INTO audit_events (type, user_id, ip, user_agent, detail, created_at)
  SELECT CASE WHEN i % 2 = 0 THEN 'sign_in_risk' ELSE 'sign_in' END, ${uuid}, '2001:db8:' || ${rnd(4)} || ':' || ${rnd(4)} || '::1',
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15',
    CASE WHEN i % 2 = 0
      THEN '{"newDevice":false,"newCountry":false,"newAsn":false,"firstSignIn":false,"country":"FR","asn":13335,"secondFactorEnrolled":false,"policy":"adaptive","decision":"allow"}'
      ELSE '{"sid":"' || ${rnd(22)} || '","amr":["pwd"],"acr":"urn:gatehouse:acr:pwd"}' END,
    ${T0} + i * 1000
  FROM n`;

const CHUNK = 5000;
const range = (from: number, to: number) => `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to}) `;

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-storage-'));
const mf = new Miniflare({
  ...convertV4MiniflareOptions({
    modules: true,
    script: 'export default { fetch() { return new Response(null, { status: 204 }); } }',
    compatibilityDate: COMPATIBILITY_DATE,
    d1Databases: ['DB'],
  }),
  // Miniflare 5: the database lands in a file under this directory, for dbstat to read.
  resourcePersistencePath: dir,
} as never);
const started = performance.now();
try {
  const db = await mf.getD1Database('DB');
  await applyMigrationsTo(db);
  await db
    .prepare(`INSERT INTO oauth_clients (client_id, name, token_endpoint_auth_method, redirect_uris, grant_types, scopes, created_at)
    VALUES ('storage-bench-app', 'Bench', 'none', '[]', '[]', '[]', ${T0})`)
    .run();
  for (let from = 1; from <= args.users; from += CHUNK) {
    const to = Math.min(args.users, from + CHUNK - 1);
    await db.prepare(range(from, to) + SEED[0]![1]).run();
    // The rest per chunk of users just inserted (rowid order).
    const u = `WITH u AS (SELECT rowid, id, email FROM users WHERE rowid BETWEEN ${from} AND ${to}) `;
    for (const [, sql] of SEED.slice(1)) await db.prepare(u + sql).run();
  }
  for (let from = 1; from <= args.events; from += CHUNK)
    await db.prepare(range(from, Math.min(args.events, from + CHUNK - 1)) + AUDIT).run();
} finally {
  await mf.dispose();
}
const seeded = (performance.now() - started) / 1000;

const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.sqlite') && !f.includes('metadata'));
if (files.length !== 1) throw new Error(`expected one D1 database file in ${dir}, found ${files.join(', ')}`);
const file = join(dir, files[0]!);
const sqlite = new DatabaseSync(file, { readOnly: true });
const owner = new Map(
  (
    sqlite.prepare("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')").all() as {
      name: string;
      tbl_name: string;
    }[]
  ).map((r) => [r.name, r.tbl_name]),
);
const bytes = new Map<string, number>();
for (const r of sqlite.prepare('SELECT name, sum(pgsize) AS b FROM dbstat GROUP BY name').all() as { name: string; b: number }[]) {
  const table = owner.get(r.name) ?? r.name;
  bytes.set(table, (bytes.get(table) ?? 0) + r.b);
}
const rows = (t: string) => (sqlite.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
const fileBytes = statSync(file).size;

const perUser = ['users', ...SEED.slice(1).map(([t]) => t)];
console.log(
  `${args.users} users and ${args.events} audit events seeded into local D1 in ${fmt(seeded)} s; database file ${fmt(fileBytes / 1e6)} MB\n`,
);
console.log('table                 rows      bytes (with indexes)   bytes/row   bytes/user');
let userTotal = 0;
for (const t of perUser) {
  const b = bytes.get(t) ?? 0;
  userTotal += b;
  const n = rows(t);
  console.log(
    `${t.padEnd(20)} ${String(n).padStart(7)}  ${String(b).padStart(14)}  ${fmt(n ? b / n : 0, 0).padStart(12)}  ${fmt(b / args.users, 0).padStart(11)}`,
  );
}
const audit = bytes.get('audit_events') ?? 0;
const perEvent = audit / args.events;
console.log(
  `${'audit_events'.padEnd(20)} ${String(args.events).padStart(7)}  ${String(audit).padStart(14)}  ${fmt(perEvent, 0).padStart(12)}`,
);
const perUserBytes = userTotal / args.users;
const GB10 = 10 * 1024 ** 3;
console.log(`\nper user (this mix, no audit): ${fmt(perUserBytes, 0)} bytes → ${fmt(GB10 / perUserBytes / 1e6, 1)} M users per 10 GB`);
for (const signInsPerMonth of [2, 10, 30]) {
  const auditPerUser = signInsPerMonth * 2 * perEvent * (400 / 30);
  console.log(
    `with audit kept 400 days at ${signInsPerMonth} sign-ins per user per month (2 events each): ${fmt(perUserBytes + auditPerUser, 0)} bytes → ${fmt(GB10 / (perUserBytes + auditPerUser) / 1e6, 2)} M users per 10 GB`,
  );
}
console.log(`\nreproduce: ${command}`);
sqlite.close();
rmSync(dir, { recursive: true, force: true });
