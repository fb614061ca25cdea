declare namespace Cloudflare {
  interface Env extends import('../src/config').Env {
    TEST_MIGRATIONS: import('cloudflare:test').D1Migration[];
  }
}
