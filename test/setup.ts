import { applyD1Migrations } from 'cloudflare:test';
import { env } from 'cloudflare:workers';

// The same SQL files production applies with `wrangler d1 migrations apply`.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
await applyD1Migrations(env.KEYS_TEST_DB, env.TEST_MIGRATIONS);
