import { describe, expect, it } from 'vitest';
import { safeReturnTo } from '../../src/auth/urls';

// Open-redirect payloads for the sign-in return_to. None may lead off-site.
const PAYLOADS = [
  '//evil.example',
  '//evil.example/',
  '///evil.example',
  '////evil.example',
  '/\\evil.example',
  '/\\/evil.example',
  '\\\\evil.example',
  '\\/evil.example',
  'https://evil.example',
  'https:evil.example',
  'http:/evil.example',
  'https:/\\evil.example',
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'data:text/html,x',
  'vbscript:x',
  '//evil.example@gatehouse.test',
  '/@evil.example',
  '//gatehouse.test@evil.example',
  'https://gatehouse.test@evil.example',
  '/%2f%2fevil.example',
  '/%2F%2Fevil.example',
  '/%5cevil.example',
  '/%5Cevil.example',
  '%2f%2fevil.example',
  '/%09/evil.example',
  '/\t/evil.example',
  '/\n/evil.example',
  '/\r\n/evil.example',
  ' //evil.example',
  '/ /evil.example',
  '\u0000//evil.example',
  '/\u0000/evil.example',
  '/\u00a0/evil.example',
  '/\u2028/evil.example',
  '/\u3000/evil.example',
  '//\u200bevil.example',
  '/．/evil.example',
  '/。/evil.example',
  '//evil%2eexample',
  '//evil.example%2f',
  '/%00/evil.example',
  '/\\\\evil.example',
  '//%65vil.example',
  'evil.example',
  '.evil.example',
  '..//evil.example',
  '/..//evil.example',
  '/./\\evil.example',
  '/.//evil.example',
  '//:evil.example',
  '/\\tevil',
  '//evil.example:443/',
  '/%0d%0aLocation:%20https://evil.example',
  '/%E3%80%82/evil.example',
  'http://localhost:8787.evil.example/',
];

describe('return_to after sign-in', () => {
  it(`never leads off-site for ${PAYLOADS.length} open-redirect payloads`, () => {
    expect(PAYLOADS.length).toBeGreaterThanOrEqual(50);
    for (const payload of PAYLOADS) {
      const result = safeReturnTo(payload);
      // What a browser would do with the Location header: resolve it against our origin.
      const landed = new URL(result, 'https://gatehouse.test');
      expect(landed.origin, JSON.stringify(payload)).toBe('https://gatehouse.test');
      expect(result.startsWith('/') && !result.startsWith('//') && !result.startsWith('/\\'), JSON.stringify(payload)).toBe(true);
    }
  });

  it('keeps ordinary same-origin paths with their query', () => {
    expect(safeReturnTo('/demo/me?x=1&y=2')).toBe('/demo/me?x=1&y=2');
    expect(safeReturnTo('/auth/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb')).toBe(
      '/auth/authorize?client_id=a&redirect_uri=https%3A%2F%2Fapp.example%2Fcb',
    );
    expect(safeReturnTo(undefined)).toBe('/auth/account');
  });
});
