import { env } from 'cloudflare:workers';
import { describe, expect, it } from 'vitest';
import { buildClient } from '../../src/oauth/client-registration';
import { CLIENT_CACHE_TTL_MS } from '../../src/oauth/clients';
import { createDb } from '../../src/db/client';
import { appWith, recordingD1 } from '../helpers';
import { basic, form, registerClient, registerResource } from './helpers';
import { manage, registered } from './registration-helpers';

// Client records in the isolate (src/oauth/clients.ts): the token endpoint authenticates a known
// client without reading D1; what Gatehouse changes itself takes effect at once, a change made in
// D1 directly (the CLI) within CLIENT_CACHE_TTL_MS.

const grant = (request: ReturnType<typeof appWith>, clientId: string, secret: string) => {
  const init = form({ grant_type: 'client_credentials', scope: 'profile' });
  return request('/auth/token', { ...init, headers: { ...init.headers, authorization: basic(clientId, secret) } });
};

describe('client records in the isolate', () => {
  it('a client_credentials grant reads the client from D1 once, then not again while the record is fresh', async () => {
    const { clientId, clientSecret } = await registerClient();
    const log: string[] = [];
    const d1 = recordingD1(env.DB, log);
    const request = appWith(() => ({ d1, db: createDb(d1) }));
    expect((await grant(request, clientId, clientSecret)).status).toBe(200);
    const clientReads = () => log.filter((sql) => /from "oauth_clients"/i.test(sql)).length;
    expect(clientReads()).toBe(1);
    log.length = 0;
    for (let i = 0; i < 3; i++) expect((await grant(request, clientId, clientSecret)).status).toBe(200);
    // Steady state: no statement at all — no client read, nothing else.
    expect(log).toEqual([]);
  });

  it('a client_credentials grant for a registered API reads the client and the API once, then nothing', async () => {
    const api = await registerResource({ scopes: [{ name: 'jobs:run', description: null }] });
    const { clientId, clientSecret } = await registerClient({ resources: [{ resource: api, scopes: ['jobs:run'] }] });
    const log: string[] = [];
    const d1 = recordingD1(env.DB, log);
    const request = appWith(() => ({ d1, db: createDb(d1) }));
    const forApi = () => {
      const init = form({ grant_type: 'client_credentials', resource: api });
      return request('/auth/token', { ...init, headers: { ...init.headers, authorization: basic(clientId, clientSecret) } });
    };
    expect((await forApi()).status).toBe(200);
    expect(log.filter((sql) => /from "(oauth_clients|client_resources|api_resources)"/i.test(sql))).toHaveLength(3);
    log.length = 0;
    for (let i = 0; i < 3; i++) expect((await forApi()).status).toBe(200);
    expect(log).toEqual([]);
  });

  it('a secret changed in D1 directly (the CLI) is taken within the cache lifetime, and the old one refused after it', async () => {
    const { clientId, clientSecret } = await registerClient();
    const now = appWith(() => ({}));
    expect((await grant(now, clientId, clientSecret)).status).toBe(200);
    const rotated = await buildClient(
      { name: 'Test App', redirectUris: ['https://rp.example/cb'], grantTypes: ['client_credentials'], scopes: ['profile'] },
      Date.now(),
    );
    await env.DB.prepare('UPDATE oauth_clients SET secret_hash = ? WHERE client_id = ?').bind(rotated.row.secretHash, clientId).run();
    // Within the lifetime this isolate still has the old record: the documented staleness.
    expect((await grant(now, clientId, clientSecret)).status).toBe(200);
    const later = appWith((deps) => ({ now: () => deps.now() + CLIENT_CACHE_TTL_MS + 1 }));
    const refused = await grant(later, clientId, clientSecret);
    expect(refused.status).toBe(401);
    expect(await refused.json()).toMatchObject({ error: 'invalid_client' });
    expect((await grant(later, clientId, rotated.clientSecret!)).status).toBe(200);
  });

  it('a client deleted through Gatehouse (RFC 7592) is refused at once on the isolate that deleted it', async () => {
    const client = await registered({ grant_types: ['client_credentials'], scope: 'profile', response_types: [] });
    const request = appWith(() => ({}));
    expect((await grant(request, client.client_id, client.client_secret!)).status).toBe(200);
    expect((await manage(client.client_id, client.registration_access_token, { method: 'DELETE' })).status).toBe(204);
    const refused = await grant(request, client.client_id, client.client_secret!);
    expect(refused.status).toBe(401);
  });

  it('a cached record cannot be changed by the code that reads it', async () => {
    const { clientId } = await registerClient();
    const { findClient } = await import('../../src/oauth/clients');
    const db = createDb(env.DB);
    const client = (await findClient(db, clientId))!;
    expect(() => (client.scopes as string[]).push('admin')).toThrow(TypeError);
    expect((await findClient(db, clientId))!.scopes).not.toContain('admin');
  });
});
