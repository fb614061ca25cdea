/**
 * npm run bench:users — user search through the admin API at two sizes in one run: Gatehouse's real
 * bundle in two workerd instances (Miniflare, logging off), one with a small user table and one with
 * a large one, each holding the same 50 "probe" users the searches find among the filler. Every
 * search is an admin API call with a machine client's token, answered from local D1; the run prints
 * each search's median latency at both sizes and the ratio (large / small). A search that walks an
 * index in order and stops after a page costs the same at any size; one that scans does not.
 *
 * Options: --small N (default 1000), --large N (default 100000), --n requests per search (default 200).
 */
import { cpus } from 'node:os';
import { clientResources, oauthClients } from '../src/db/schema';
import { buildClient } from '../src/oauth/client-registration';
import { insertSql } from '../scripts/lib/sql';
import { benchArgs, bundle, fmt, type Instance, median, startGatehouse } from './harness';

const { args, command: COMMAND } = benchArgs('bench:users', { small: 1000, large: 100_000, n: 200 });
const PROBES = 50;
/** The admin API's audience (src/admin/operations.ts ADMIN_AUDIENCE). */
const ADMIN_AUDIENCE = 'urn:gatehouse:admin';
const SECRET = 'bench-admin-secret-bench-admin-secret';
const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

/**
 * `total` users: PROBES probes (probe-NNN@probe.example, role `auditor`, tier `gold`, created and
 * last signed in within one day) and filler (user-NNNNNNN@example.com, a tenth with role `member`,
 * tiers free/silver, created over the year before, two thirds signed in at some time). Made inside
 * D1 with recursive CTEs (no round trip per row).
 */
async function seed(gatehouse: Instance, total: number): Promise<void> {
  const db = await gatehouse.db();
  const filler = total - PROBES;
  const series = (n: number) => `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ${n - 1})`;
  const hex = `lower(hex(randomblob(16)))`;
  for (const statement of [
    `${series(filler)} INSERT INTO users (id, email, email_verified_at, tier, created_at, updated_at, last_sign_in_at)
       SELECT ${hex}, printf('user-%07d@example.com', i), ${T0}, CASE WHEN i % 3 = 0 THEN 'silver' ELSE 'free' END,
              ${T0 - 400 * DAY} + i * 300, ${T0}, CASE WHEN i % 3 = 2 THEN NULL ELSE ${T0 - 200 * DAY} + i * 100 END FROM s`,
    `INSERT INTO user_roles (user_id, role) SELECT id, 'member' FROM users WHERE email LIKE 'user-%' AND CAST(substr(email, 6, 7) AS INTEGER) % 10 = 0`,
    `${series(PROBES)} INSERT INTO users (id, email, email_verified_at, tier, created_at, updated_at, last_sign_in_at)
       SELECT ${hex}, printf('probe-%03d@probe.example', i), ${T0}, 'gold', ${T0 + 10 * DAY} + i * 1000, ${T0}, ${T0 + 20 * DAY} + i * 1000 FROM s`,
    `INSERT INTO user_roles (user_id, role) SELECT id, 'auditor' FROM users WHERE email LIKE 'probe-%'`,
    'ANALYZE',
  ])
    await db.prepare(statement).run();
  const { n } = (await db.prepare('SELECT COUNT(*) AS n FROM users').first<{ n: number }>())!;
  if (n !== total) throw new Error(`seeded ${n} users, wanted ${total}`);
}

/** A machine client with admin:users:read, and its token (through the token endpoint). */
async function adminToken(gatehouse: Instance): Promise<string> {
  const built = await buildClient(
    {
      name: 'Bench admin',
      clientId: 'bench-admin',
      clientSecret: SECRET,
      redirectUris: [],
      grantTypes: ['client_credentials'],
      scopes: [],
      resources: [{ resource: ADMIN_AUDIENCE, scopes: ['admin:users:read'] }],
    },
    Date.now(),
  );
  const db = await gatehouse.db();
  for (const statement of [insertSql(oauthClients, built.row), ...built.grants.map((g) => insertSql(clientResources, g))])
    await db.prepare(statement).run();
  const res = await gatehouse.fetch('/auth/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa(`bench-admin:${SECRET}`)}` },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: ADMIN_AUDIENCE, scope: 'admin:users:read' }).toString(),
  });
  const body = (await res.json()) as { access_token?: string };
  if (!body.access_token) throw new Error(`no admin token: ${res.status} ${JSON.stringify(body)}`);
  return body.access_token;
}

const results: Record<string, number[]> = {};

/** The searches, each expected to find this many users (the same at both sizes). */
const SEARCHES: { name: string; query: string; expect: number }[] = [
  { name: 'exact address', query: 'email=probe-017@probe.example', expect: 1 },
  { name: 'address prefix (50 of them)', query: 'email_prefix=probe-&limit=50', expect: 50 },
  { name: 'role (50 holders)', query: 'role=auditor&limit=50', expect: 50 },
  { name: 'tier gold', query: 'tier=gold&limit=50', expect: 50 },
  { name: 'created in a day', query: `created_since=${T0 + 10 * DAY}&created_until=${T0 + 11 * DAY}&limit=50`, expect: 50 },
  {
    name: 'last signed in in a day',
    query: `last_sign_in_since=${T0 + 20 * DAY}&last_sign_in_until=${T0 + 21 * DAY}&limit=50`,
    expect: 50,
  },
  { name: 'newest first, one page', query: 'limit=50', expect: 50 },
  { name: 'by id', query: '', expect: 1 },
];

/** One timed admin call; throws unless it found what it should. */
async function timed(gatehouse: Instance, token: string, query: string, expected: number): Promise<number> {
  const t = performance.now();
  const res = await gatehouse.fetch(`/auth/admin/v1/users?${query}`, { headers: { authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { items?: unknown[] };
  if (res.status !== 200 || body.items?.length !== expected)
    throw new Error(`${query}: ${res.status}, ${body.items?.length} items (wanted ${expected}): ${JSON.stringify(body).slice(0, 200)}`);
  return performance.now() - t;
}

const outdir = bundle('gatehouse');
// Both sizes up at once, and their requests interleaved (alternating which goes first), so that
// whatever else the machine does weighs on both alike.
const sides: { gatehouse: Instance; token: string; probe: string }[] = [];
try {
  for (const size of [args.small, args.large]) {
    const gatehouse = await startGatehouse(outdir);
    sides.push({ gatehouse, token: '', probe: '' });
    const seeded = performance.now();
    await seed(gatehouse, size);
    console.error(`seeded ${size} users in ${fmt((performance.now() - seeded) / 1000)} s`);
    const db = await gatehouse.db();
    const probe = (await db.prepare("SELECT id FROM users WHERE email = 'probe-003@probe.example'").first<{ id: string }>())!;
    sides[sides.length - 1] = { gatehouse, token: await adminToken(gatehouse), probe: probe.id };
  }
  for (const s of SEARCHES) {
    const times: number[][] = [[], []];
    for (let i = 0; i < args.n + 10; i++)
      for (const k of i % 2 ? [1, 0] : [0, 1]) {
        const side = sides[k]!;
        const ms = await timed(side.gatehouse, side.token, s.query || `id=${side.probe}`, s.expect);
        if (i >= 10) times[k]!.push(ms);
      }
    results[s.name] = times.map(median);
  }
} finally {
  for (const side of sides) await side.gatehouse.stop();
}

const rows = SEARCHES.map(({ name }) => {
  const [small, large] = results[name]!;
  return { name, small: small!, large: large!, ratio: large! / small! };
});
const worst = Math.max(...rows.map((r) => r.ratio));
console.log(`
User search through the admin API (GET /auth/admin/v1/users, local D1 in workerd via Miniflare),
Node ${process.version}, ${cpus().length} cores; median ms per request over ${args.n} sequential requests

  search                          ${String(args.small).padStart(8)} users ${String(args.large).padStart(8)} users   ratio
${rows.map((r) => `  ${r.name.padEnd(30)}  ${fmt(r.small, 2).padStart(14)} ${fmt(r.large, 2).padStart(14)}   ${fmt(r.ratio, 2)}x`).join('\n')}

  worst ratio ${fmt(worst, 2)}x (target ≤ 1.5x)

Reproduce: ${COMMAND}
`);
