import { createExecutionContext, env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import worker from '../../src/index';
import { createApp } from '../../src/app';
import { APP, failingD1, ORIGIN } from '../helpers';

/**
 * Discovery and the JWKS are answered before the router (src/well-known.ts): the same responses as
 * the app's routes, and everything the fast path does not own — another method, host or path, a
 * failure — is the app's, rendered as before.
 */
const get = (url: string, over: Partial<typeof env> = {}, init: RequestInit = {}) =>
  worker.fetch(new Request(url, init) as never, { ...env, ...over } as never, createExecutionContext());

describe('the well-known documents', () => {
  it('answer exactly as the app’s own routes do', async () => {
    const app = createApp();
    for (const path of ['/.well-known/jwks.json', '/.well-known/openid-configuration', '/.well-known/oauth-authorization-server']) {
      const fast = await get(`${ORIGIN}${path}`);
      const routed = await app.fetch(new Request(`${ORIGIN}${path}`), env, createExecutionContext());
      expect(fast.status, path).toBe(200);
      expect(await fast.text(), path).toBe(await routed.text());
      for (const h of ['content-type', 'cache-control', 'access-control-allow-origin'])
        expect(fast.headers.get(h), `${path} ${h}`).toBe(routed.headers.get(h));
    }
  });

  it('leave other methods, hosts and paths to the app', async () => {
    const head = await get(`${ORIGIN}/.well-known/jwks.json`, {}, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await get(`${ORIGIN}/.well-known/jwks.json`, {}, { method: 'POST' });
    expect(post.status).toBe(404);
    // On an app host, /.well-known belongs to the origins behind the gateway, never to Gatehouse.
    const app = await get(`${APP}/.well-known/jwks.json`, {}, { headers: { accept: 'application/json' } });
    expect(app.status).toBe(404);
    expect(await app.json()).toMatchObject({ code: 'not_found' });
  });

  it('fail closed through the app: a key store that cannot be read is a 503 problem, a bad config config_invalid', async () => {
    const down = await get(`${ORIGIN}/.well-known/jwks.json`, { DB: failingD1(env.DB) });
    expect(down.status).toBe(503);
    expect(down.headers.get('content-type')).toContain('application/problem+json');
    expect(await down.json()).toMatchObject({ code: 'temporarily_unavailable' });
    const misconfigured = await get(`${ORIGIN}/.well-known/openid-configuration`, { AUTH_SECRET: undefined });
    expect(misconfigured.status).toBe(500);
    expect(await misconfigured.json()).toMatchObject({ code: 'config_invalid' });
  });
});
