import type { D1Migration } from 'cloudflare:test';
import type { Env as GatehouseEnv } from '../src/config';

declare global {
  namespace Cloudflare {
    interface Env extends GatehouseEnv {
      TEST_MIGRATIONS: D1Migration[];
      KEYS_TEST_DB: D1Database;
    }
  }
}
