import { describe, expect, it } from 'vitest';
import { matchesPattern, normalisePath } from '../../src/gateway/path';

/** The route a path reaches in a table where /admin/* is protected and /public/* and /* are open. */
function routeOf(path: string): 'admin' | 'public' | 'other' {
  if (matchesPattern(path, '/admin/*')) return 'admin';
  if (matchesPattern(path, '/public/*')) return 'public';
  return 'other';
}

// Attempts to reach /admin/secret without the admin route's policy applying.
const CONFUSIONS = [
  '/public/../admin/secret',
  '/public/./../admin/secret',
  '/public/%2e%2e/admin/secret',
  '/public/%2E%2E/admin/secret',
  '/public/.%2e/admin/secret',
  '/public/%2e./admin/secret',
  '/public%2f..%2fadmin/secret',
  '/public/..%2fadmin/secret',
  '/public%2F..%2Fadmin%2Fsecret',
  '/public/..%5cadmin/secret',
  '/public/..\\admin/secret',
  '/public\\..\\admin\\secret',
  '//admin/secret',
  '///admin//secret',
  '/./admin/secret',
  '/public/../../admin/secret',
  '/ADMIN/secret',
  '/Admin/Secret',
  '/aDmIn/secret',
  '/%61dmin/secret',
  '/%41DMIN/secret',
  '/admin./secret',
  '/admin%2e/secret',
  '/admin /secret',
  '/admin%20/secret',
  '/admin;/secret',
  '/admin;jsessionid=x/secret',
  '/public/..;/admin/secret',
  '/public;/../admin/secret',
  '/admin%3b/secret',
  '/admin%00/secret',
  '/admin\u0000/secret',
  '/public/%2e%2e%2fadmin/secret',
  '/public/%c0%ae%c0%ae/admin/secret',
  '/public/%e0%80%ae%e0%80%ae/admin/secret',
  '/public/%c0%af../admin/secret',
  '/public/%ff/../admin/secret',
  '/public/%/../admin/secret',
  '/public/%2/../admin/secret',
  '/admin%09/secret',
  '/admin\t/secret',
  '/public/..%00/admin/secret',
  '/admin/./secret',
  '/admin/x/../secret',
  '/public/..',
  '/..',
  '/public/../..',
  '/public%23/../admin/secret',
];

describe('gateway path normalisation', () => {
  it(`lets none of ${CONFUSIONS.length} confusions reach /admin without the admin policy`, () => {
    expect(CONFUSIONS.length).toBeGreaterThanOrEqual(40);
    for (const raw of CONFUSIONS) {
      const result = normalisePath(raw);
      if (!result.ok) continue; // refused with 400: no bypass
      // Accepted: the normalised path is what is forwarded; if it is under /admin, the admin route applies.
      const forwardedLower = result.path.toLowerCase();
      if (forwardedLower === '/admin' || forwardedLower.startsWith('/admin/')) expect(routeOf(result.path), raw).toBe('admin');
      else expect(forwardedLower, raw).not.toContain('admin/secret');
    }
  });

  it('refuses what an origin could read differently, naming why', () => {
    expect(normalisePath('/a/%2e%2e/b')).toEqual({ ok: false, reason: 'the path has an encoded /, \\ or .' });
    expect(normalisePath('/a\\b')).toMatchObject({ ok: false });
    expect(normalisePath('/a;b')).toMatchObject({ ok: false });
    expect(normalisePath('/%c0%ae')).toEqual({ ok: false, reason: 'the path has percent-escapes that are not valid UTF-8' });
    expect(normalisePath('/a%zz')).toEqual({ ok: false, reason: 'the path has a malformed percent-escape' });
    expect(normalisePath('/..')).toEqual({ ok: false, reason: 'the path climbs above the root' });
    expect(normalisePath('/admin./x')).toEqual({ ok: false, reason: 'a path segment ends in a dot or whitespace' });
  });

  it('normalises the harmless forms', () => {
    expect(normalisePath('/a//b///c')).toEqual({ ok: true, path: '/a/b/c' });
    expect(normalisePath('/a/./b/../c')).toEqual({ ok: true, path: '/a/c' });
    expect(normalisePath('/%7Euser/%41bc')).toEqual({ ok: true, path: '/~user/Abc' });
    expect(normalisePath('/caf%c3%a9/x%20y')).toEqual({ ok: true, path: '/caf%C3%A9/x%20y' });
    expect(normalisePath('/a/b/')).toEqual({ ok: true, path: '/a/b/' });
    expect(normalisePath('/')).toEqual({ ok: true, path: '/' });
  });

  it('matches route patterns on whole segments, ignoring case', () => {
    expect(matchesPattern('/demo/me', '/demo/me/*')).toBe(true);
    expect(matchesPattern('/demo/me/x/y', '/demo/me/*')).toBe(true);
    expect(matchesPattern('/DEMO/Me/x', '/demo/me/*')).toBe(true);
    expect(matchesPattern('/demo/meow', '/demo/me/*')).toBe(false);
    expect(matchesPattern('/health', '/health')).toBe(true);
    expect(matchesPattern('/healthz', '/health')).toBe(false);
  });
});

describe('paths whose decoding is not stable', () => {
  it('refuses an encoded % before an escape, at any depth, characters NFKC changes, and ones whose case is ASCII', () => {
    for (const p of ['/a/%252e', '/a/%252F', '/a/%255c', '/a/%2525%32e', '/a/%25c0%25ae'])
      expect(normalisePath(p), p).toEqual({ ok: false, reason: 'the path is percent-encoded twice (an encoded % before an escape)' });
    // ．／ａ․ ﬁ, the Kelvin sign (NFC and NFKC both make it K), and a decomposed é (an origin that
    // composes it routes /café, which we never matched).
    for (const p of [
      '/a/%EF%BC%8E',
      '/a/%EF%BC%8F',
      '/%EF%BD%81dmin',
      '/a/%E2%80%A4',
      '/a/%EF%AC%81le',
      '/%E2%84%AAyc/review',
      '/%C5%BFecret',
      '/cafe%CC%81',
    ])
      expect(normalisePath(p), p).toEqual({ ok: false, reason: 'the path has characters that Unicode normalisation (NFKC) changes' });
    // Characters an origin's toUpperCase/toLowerCase turns into ASCII: ı (→ I), ǰ (→ J̌), ß (→ SS), İ (→ i̇); ſ (→ S) NFKC catches.
    for (const p of ['/adm%C4%B1n/users', '/%C7%B0ob', '/gro%C3%9F', '/%C4%B0nfo'])
      expect(normalisePath(p), p).toEqual({
        ok: false,
        reason: 'the path has a character whose upper or lower case is plain ASCII (ı, ß, İ)',
      });
    // Composed accents and other letters are kept, as escapes.
    expect(normalisePath('/caf%C3%A9')).toEqual({ ok: true, path: '/caf%C3%A9' });
    expect(normalisePath('/%D0%BF%D1%83%D1%82%D1%8C')).toEqual({ ok: true, path: '/%D0%BF%D1%83%D1%82%D1%8C' });
    expect(normalisePath('/100%25')).toEqual({ ok: true, path: '/100%25' });
    expect(normalisePath('/100%25off')).toEqual({ ok: true, path: '/100%25off' });
  });
});
