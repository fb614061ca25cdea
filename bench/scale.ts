/**
 * npm run bench:scale — Gatehouse's real bundle at two sizes side by side (issue 17): two workerd
 * instances (Miniflare, logging off), one seeded with a small user table and one with a large one,
 * and the same requests sent to both in turn (alternating which goes first): a user found by address
 * through the admin API, a password sign-in, an email sign-in request, userinfo and a refresh. Prints
 * each row's median at both sizes and the ratio (large / small), the seeding time and the size of
 * each database file.
 *
 * The users are written straight into the D1 database file (node:sqlite, with Miniflare stopped):
 * every migration applied through D1 first, then a realistic mix per user — 80% with a password,
 * 12% with a role, a tenth gold, five sign-in history markers, a quarter with passkeys, a tenth with
 * an authenticator app and ten recovery codes, and two audit events. The probe user, the client and
 * the tokens are then made through the worker itself, the same way at both sizes.
 *
 * Options: --small N (default 1000), --large N (default 1000000), --n requests per row (default 200),
 * --minutes M: the measured part stops after M minutes whatever n (default 10).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { clientResources, oauthClients } from '../src/db/schema';
import { s256 } from '../src/lib/pkce';
import { buildClient } from '../src/oauth/client-registration';
import { insertSql } from '../scripts/lib/sql';
import {
  applyMigrationsTo,
  benchArgs,
  bundle,
  fmt,
  gatehouseWorker,
  type Instance,
  Jar,
  median,
  signedInUser,
  startMiniflare,
} from './harness';

const { args, command: COMMAND } = benchArgs('bench:scale', { small: 1000, large: 1_000_000, n: 200, minutes: 10 });
const ADMIN_AUDIENCE = 'urn:gatehouse:admin';
const SECRET = 'bench-scale-secret-bench-scale-secret';
const REDIRECT_URI = 'https://app.bench/callback';
const PROBE = 'probe@probe.example';
const PASSWORD = 'benchmark passphrase 2026';
const FORM = { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`bench-scale:${SECRET}`)}` };
const T0 = 1_780_000_000_000;

/** `n` random hex characters, as long as the real strings. */
const rnd = (n: number) => `substr(hex(randomblob(${Math.ceil(n / 2)})), 1, ${n})`;
const CHUNK = 50_000;

/** The mix, per chunk of users [from, to] (filler user-NNNNNNN@example.com, in rowid order). */
const SEED = (from: number, to: number) => {
  const u = `(SELECT rowid AS r, id FROM users WHERE rowid BETWEEN ${from} AND ${to})`;
  return [
    `WITH RECURSIVE n(i) AS (SELECT ${from} UNION ALL SELECT i + 1 FROM n WHERE i < ${to})
     INSERT INTO users (id, email, email_verified_at, password_hash, tier, name, created_at, updated_at, last_sign_in_at)
     SELECT lower(hex(randomblob(16))), printf('user-%07d@example.com', i), ${T0},
       CASE WHEN i % 5 <> 0 THEN '$argon2id$v=19$m=19456,t=2,p=1$' || ${rnd(22)} || '$' || ${rnd(43)} END,
       CASE WHEN i % 10 = 0 THEN 'gold' ELSE 'free' END, CASE WHEN i % 2 = 0 THEN 'Firstname Lastname' END,
       ${T0} - i * 1000, ${T0}, CASE WHEN i % 3 <> 2 THEN ${T0} - i * 500 END
     FROM n`,
    `INSERT INTO user_roles (user_id, role) SELECT id, CASE WHEN r % 50 = 0 THEN 'admin' ELSE 'beta' END FROM ${u} WHERE r % 8 = 0`,
    `INSERT INTO sign_in_history (user_id, marker, first_seen_at, last_seen_at)
     SELECT id, CASE WHEN j <= 3 THEN 'device:' || ${rnd(43)} WHEN j = 4 THEN 'country:FR' ELSE 'asn:13335' END, ${T0}, ${T0}
     FROM ${u}, (SELECT 1 AS j UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL SELECT 5)`,
    `INSERT INTO passkeys (id, user_id, name, public_key, counter, transports, backed_up, created_at, last_used_at)
     SELECT ${rnd(43)}, id, 'iCloud Keychain', ${rnd(103)}, 0, '["internal","hybrid"]', 1, ${T0}, ${T0} FROM ${u} WHERE r % 4 = 0`,
    `INSERT INTO totp_credentials (user_id, secret_encrypted, last_step, confirmed_at, created_at)
     SELECT id, ${rnd(70)}, 59000000, ${T0}, ${T0} FROM ${u} WHERE r % 10 = 1`,
    `INSERT INTO recovery_codes (user_id, code_hash, used_at, created_at)
     SELECT id, ${rnd(43)}, NULL, ${T0} FROM ${u}, (WITH RECURSIVE k(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM k WHERE j < 10) SELECT j FROM k)
     WHERE r % 10 = 1`,
    `INSERT INTO audit_events (type, user_id, ip, user_agent, detail, created_at)
     SELECT CASE WHEN j = 1 THEN 'sign_in_risk' ELSE 'sign_in' END, id, '2001:db8::1', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) Safari/605.1.15',
       CASE WHEN j = 1 THEN '{"newDevice":false,"country":"FR","asn":13335,"decision":"allow"}' ELSE '{"amr":["pwd"]}' END, ${T0} - r * 1000
     FROM ${u}, (SELECT 1 AS j UNION ALL SELECT 2)`,
  ];
};

/** A D1 database migrated through Miniflare, then `users` users written into its file directly. */
async function seededDatabase(outdir: string, users: number): Promise<{ dir: string; file: string; seconds: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-scale-'));
  const migrating = await startMiniflare([gatehouseWorker(outdir)], { persistTo: dir });
  try {
    await applyMigrationsTo(await migrating.db());
  } finally {
    await migrating.stop();
  }
  const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.sqlite') && !f.includes('metadata'));
  if (files.length !== 1) throw new Error(`expected one D1 database file in ${dir}, found ${files.join(', ')}`);
  const file = join(dir, files[0]!);
  const started = performance.now();
  const sqlite = new DatabaseSync(file);
  try {
    sqlite.exec('PRAGMA synchronous = OFF; PRAGMA cache_size = -262144');
    for (let from = 1; from <= users; from += CHUNK) {
      sqlite.exec('BEGIN');
      for (const statement of SEED(from, Math.min(users, from + CHUNK - 1))) sqlite.exec(statement);
      sqlite.exec('COMMIT');
    }
    sqlite.exec('ANALYZE');
    // The file is in WAL mode (as D1 leaves it): fold the log in, so the file's size is the database's.
    sqlite.exec('PRAGMA wal_checkpoint(TRUNCATE)');
  } finally {
    sqlite.close();
  }
  return { dir, file, seconds: (performance.now() - started) / 1000 };
}

/** A first-party client: the code flow with refresh tokens, and client_credentials for the admin API. */
async function registerClient(gatehouse: Instance): Promise<void> {
  const built = await buildClient(
    {
      name: 'Bench scale',
      clientId: 'bench-scale',
      clientSecret: SECRET,
      redirectUris: [REDIRECT_URI],
      firstParty: true,
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      resources: [{ resource: ADMIN_AUDIENCE, scopes: ['admin:users:read'] }],
    },
    Date.now(),
  );
  const db = await gatehouse.db();
  for (const statement of [insertSql(oauthClients, built.row), ...built.grants.map((g) => insertSql(clientResources, g))])
    await db.prepare(statement).run();
}

interface Side {
  gatehouse: Instance;
  users: number;
  seconds: number;
  /** The database file's size after seeding (bytes). */
  bytes: number;
  dir: string;
  admin: string;
  access: string;
  refresh: string;
}

/** The probe (signed up, verified and signed in through the API), its tokens, and an admin token. */
async function prepare(side: Side): Promise<void> {
  const { gatehouse } = side;
  await registerClient(gatehouse);
  const jar = new Jar(gatehouse.fetch);
  await signedInUser(jar, await gatehouse.db(), PROBE, PASSWORD);
  const verifier = `bench-scale-verifier-${'x'.repeat(40)}`;
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: 'bench-scale',
    redirect_uri: REDIRECT_URI,
    scope: 'openid email offline_access',
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
    state: 's',
  });
  const code = new URL((await jar.fetch(`/auth/authorize?${q}`)).headers.get('location')!).searchParams.get('code')!;
  const tokens = await token(
    side,
    `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&code_verifier=${verifier}`,
  );
  side.access = tokens.access_token;
  side.refresh = tokens.refresh_token!;
  side.admin = (
    await token(side, `grant_type=client_credentials&resource=${encodeURIComponent(ADMIN_AUDIENCE)}&scope=admin:users:read`)
  ).access_token;
}

async function token(side: Side, body: string): Promise<{ access_token: string; refresh_token?: string }> {
  const res = await side.gatehouse.fetch('/auth/token', { method: 'POST', headers: FORM, body });
  const json = (await res.json()) as { access_token?: string; refresh_token?: string };
  if (res.status !== 200 || !json.access_token) throw new Error(`token: ${res.status} ${JSON.stringify(json)}`);
  return json as { access_token: string; refresh_token?: string };
}

const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

/** The rows: each one request, checked (a wrong answer stops the run), on side `s`, round `i`. */
const ROWS: { name: string; run: (s: Side, i: number) => Promise<void> }[] = [
  {
    name: 'user by email (admin API)',
    run: async (s) => {
      const res = await s.gatehouse.fetch(`/auth/admin/v1/users?email=${encodeURIComponent(PROBE)}`, {
        headers: { authorization: `Bearer ${s.admin}` },
      });
      const body = (await res.json()) as { items?: unknown[] };
      if (res.status !== 200 || body.items?.length !== 1) throw new Error(`user by email: ${res.status} ${JSON.stringify(body)}`);
    },
  },
  {
    name: 'password sign-in',
    run: async (s) => {
      const res = await s.gatehouse.fetch('/auth/api/sign-in', json({ email: PROBE, password: PASSWORD }));
      if (res.status !== 200) throw new Error(`sign-in: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    },
  },
  {
    name: 'email sign-in (request)',
    // A different existing user each time (both sizes hold the first thousand), under any per-address limit.
    run: async (s, i) => {
      const res = await s.gatehouse.fetch(
        '/auth/api/email-sign-in',
        json({ email: `user-${String((i % 900) + 1).padStart(7, '0')}@example.com` }),
      );
      if (res.status !== 202) throw new Error(`email sign-in: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
    },
  },
  {
    name: 'userinfo',
    run: async (s) => {
      const res = await s.gatehouse.fetch('/auth/userinfo', { headers: { authorization: `Bearer ${s.access}` } });
      const body = (await res.json()) as { sub?: string };
      if (res.status !== 200 || !body.sub) throw new Error(`userinfo: ${res.status} ${JSON.stringify(body)}`);
    },
  },
  {
    name: 'refresh',
    run: async (s) => {
      const tokens = await token(s, `grant_type=refresh_token&refresh_token=${encodeURIComponent(s.refresh)}`);
      s.refresh = tokens.refresh_token!;
      s.access = tokens.access_token;
    },
  },
];

const outdir = bundle('gatehouse');
const sides: Side[] = [];
const results: { name: string; small: number; large: number; samples: number }[] = [];
try {
  for (const users of [args.small, args.large]) {
    const { dir, file, seconds } = await seededDatabase(outdir, users);
    const bytes = statSync(file).size;
    console.error(`seeded ${users} users in ${fmt(seconds)} s (${fmt(bytes / 1e6)} MB)`);
    const gatehouse = await startMiniflare([gatehouseWorker(outdir)], { persistTo: dir });
    const side: Side = { gatehouse, users, seconds, bytes, dir, admin: '', access: '', refresh: '' };
    sides.push(side);
    await prepare(side);
  }
  const deadline = Date.now() + args.minutes * 60_000;
  const perRow = Math.max(1, (deadline - Date.now()) / ROWS.length);
  for (const row of ROWS) {
    const until = Math.min(deadline, Date.now() + perRow);
    const times: number[][] = [[], []];
    for (let i = 0; i < args.n + 10 && Date.now() < until; i++)
      for (const k of i % 2 ? [1, 0] : [0, 1]) {
        const t = performance.now();
        await row.run(sides[k]!, i);
        if (i >= 10) times[k]!.push(performance.now() - t);
      }
    results.push({ name: row.name, small: median(times[0]!), large: median(times[1]!), samples: times[0]!.length });
  }
} finally {
  for (const side of sides) {
    await side.gatehouse.stop();
    rmSync(side.dir, { recursive: true, force: true });
  }
}

const [small, large] = sides as [Side, Side];
const worst = Math.max(...results.map((r) => r.large / r.small));
const mb = (s: Side) => `${fmt(s.bytes / 1e6)} MB`;
console.log(`
Gatehouse at two sizes (its bundle in workerd via Miniflare, local D1, logging off), requests alternated;
Node ${process.version}, ${cpus().length} cores; median ms per request

  seeding: ${small.users} users ${fmt(small.seconds)} s (${mb(small)}), ${large.users} users ${fmt(large.seconds)} s (${mb(large)})

  request                          ${String(small.users).padStart(9)} users ${String(large.users).padStart(9)} users   ratio   samples
${results.map((r) => `  ${r.name.padEnd(30)}  ${fmt(r.small, 2).padStart(15)} ${fmt(r.large, 2).padStart(15)}   ${fmt(r.large / r.small, 2)}x   ${r.samples}`).join('\n')}

  worst ratio ${fmt(worst, 2)}x (goal ≤ 1.2x)

Reproduce: ${COMMAND}
`);
