import { env } from 'cloudflare:workers';
import { decodeJwt } from 'jose';
import { describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client';
import { appWith, recordingD1 } from '../helpers';
import { basic, form, getCode, REDIRECT, registerClient, signedInUser } from './helpers';

/**
 * What a grant costs in D1 at steady state (docs/benchmarks.md): a refresh whose tokens carry
 * nothing of the user's record reads nothing; one whose tokens carry roles (or ID-token claims)
 * reads the user and roles in one round trip — so a role changed since is in the new token.
 */
async function refreshChain(scope: string, over: Parameters<typeof registerClient>[0] = {}) {
  const client = await registerClient(over);
  const user = await signedInUser();
  const { code, verifier } = await getCode(client.clientId, user.cookie, { scope });
  const log: string[] = [];
  const d1 = recordingD1(env.DB, log);
  const request = appWith(() => ({ d1, db: createDb(d1) }));
  const post = (fields: Record<string, string>) => {
    const init = form(fields);
    return request('/auth/token', { ...init, headers: { ...init.headers, authorization: basic(client.clientId, client.clientSecret) } });
  };
  const first = await post({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier });
  expect(first.status).toBe(200);
  let refreshToken = (await first.json<{ refresh_token: string }>()).refresh_token;
  const refresh = async () => {
    log.length = 0;
    const res = await post({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(res.status).toBe(200);
    const body = await res.json<{ refresh_token: string; access_token: string; id_token: string }>();
    refreshToken = body.refresh_token;
    return { body, statements: [...log] };
  };
  return { user, refresh };
}

describe('D1 per token grant', () => {
  it('a refresh whose tokens need nothing of the user record makes no D1 statement', async () => {
    const { refresh } = await refreshChain('openid profile email offline_access');
    await refresh();
    for (let i = 0; i < 3; i++) {
      const { body, statements } = await refresh();
      expect(statements).toEqual([]);
      expect(decodeJwt(body.id_token)).not.toHaveProperty('email');
    }
  });

  it('a refresh whose tokens carry roles reads the user and roles in one round trip, and carries a role granted since', async () => {
    const { user, refresh } = await refreshChain('openid roles offline_access');
    const before = await refresh();
    // One statement: the user, and their roles from a subquery (identity/users.ts userWithRolesQuery).
    const reads = before.statements.filter((s) => /from "?(users|user_roles)\b/i.test(s));
    expect(reads).toHaveLength(1);
    expect(reads[0]).toMatch(/from "users"[\s\S]*user_roles|user_roles[\s\S]*from "users"/);
    expect(decodeJwt(before.body.access_token).roles).toEqual([]);
    await env.DB.prepare("INSERT INTO user_roles (user_id, role) VALUES (?, 'auditor')").bind(user.userId).run();
    expect(decodeJwt((await refresh()).body.access_token).roles).toEqual(['auditor']);
  });

  it('an ID token with profile claims (a client set to want them there) reads the record, fresh', async () => {
    const { user, refresh } = await refreshChain('openid email offline_access', { idTokenClaims: true });
    expect(decodeJwt((await refresh()).body.id_token)).toMatchObject({ email: user.email });
  });
});
