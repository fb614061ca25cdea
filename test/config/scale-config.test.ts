import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { base, issuesOf } from './helpers';

describe('retention configuration (issue 17)', () => {
  it('has documented defaults and reads each variable', () => {
    expect(parseConfig(base).retention).toEqual({
      auditDays: 400,
      signInHistoryDays: 180,
      signInHistoryPerKind: 20,
      batchSize: 500,
      maxRowsPerRun: 50_000,
    });
    expect(
      parseConfig({
        ...base,
        RETENTION_AUDIT_DAYS: '0',
        RETENTION_SIGN_IN_HISTORY_DAYS: '30',
        RETENTION_SIGN_IN_HISTORY_PER_KIND: '5',
        RETENTION_BATCH_SIZE: '100',
        RETENTION_MAX_ROWS_PER_RUN: '1000',
      }).retention,
    ).toEqual({ auditDays: 0, signInHistoryDays: 30, signInHistoryPerKind: 5, batchSize: 100, maxRowsPerRun: 1000 });
  });

  it.each([
    ['RETENTION_AUDIT_DAYS', '-1'],
    ['RETENTION_AUDIT_DAYS', 'forever'],
    ['RETENTION_SIGN_IN_HISTORY_DAYS', '0'],
    ['RETENTION_SIGN_IN_HISTORY_PER_KIND', '2.5'],
    ['RETENTION_BATCH_SIZE', '0'],
    ['RETENTION_BATCH_SIZE', '100000'],
    ['RETENTION_MAX_ROWS_PER_RUN', 'lots'],
  ])('refuses %s=%s with an error that names it', (name, value) => {
    const issues = issuesOf({ ...base, [name]: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(new RegExp(`^${name}: `));
  });
});

describe('cache sizes (issue 17)', () => {
  it('default to 50k session tokens, 10k assertions, 10k opaque tokens, and read each variable', () => {
    expect(parseConfig(base).caches).toEqual({ sessionTokens: 50_000, assertions: 10_000, opaqueTokens: 10_000 });
    expect(
      parseConfig({ ...base, SESSION_CACHE_SIZE: '200000', ASSERTION_CACHE_SIZE: '500', OPAQUE_TOKEN_CACHE_SIZE: '100' }).caches,
    ).toEqual({
      sessionTokens: 200_000,
      assertions: 500,
      opaqueTokens: 100,
    });
  });

  it.each([
    ['SESSION_CACHE_SIZE', '0'],
    ['SESSION_CACHE_SIZE', 'big'],
    ['ASSERTION_CACHE_SIZE', '99'],
    ['OPAQUE_TOKEN_CACHE_SIZE', '2000000'],
  ])('refuses %s=%s with an error that names it', (name, value) => {
    const issues = issuesOf({ ...base, [name]: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(new RegExp(`^${name}: `));
  });
});

describe('cache sizes applied (issue 17)', () => {
  it('the deps of a configuration size the isolate caches', async () => {
    const { env } = await import('cloudflare:workers');
    const { depsFor } = await import('../../src/deps');
    const { verifiedSessionCache } = await import('../../src/sessions/session-token');
    const { assertionCache } = await import('../../src/gateway/assertion');
    const { phantomCache } = await import('../../src/tokens/access-token');
    try {
      await depsFor({ ...env, SESSION_CACHE_SIZE: '1234', ASSERTION_CACHE_SIZE: '567', OPAQUE_TOKEN_CACHE_SIZE: '890' });
      expect([verifiedSessionCache.max, assertionCache.max, phantomCache.max]).toEqual([1234, 567, 890]);
    } finally {
      await depsFor(env);
    }
    expect([verifiedSessionCache.max, assertionCache.max, phantomCache.max]).toEqual([50_000, 10_000, 10_000]);
  });
});
