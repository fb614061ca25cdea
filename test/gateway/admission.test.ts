import { describe, expect, it } from 'vitest';
import { admit, METHODS } from '../../src/gateway/admission';
import { GatewayRefusal } from '../../src/gateway/refusal';
import { formatApiKey } from '../../src/oauth/api-keys';

// The checks before any route is matched (src/gateway/admission.ts), one rule each; the pipeline
// tests (gateway.test.ts, path.test.ts, app-hosts.test.ts) attack them through the real app.

const request = (over: Partial<Parameters<typeof admit>[0]> = {}) => ({
  pathname: '/api/x',
  search: '',
  method: 'GET',
  serviceWorker: false,
  onAuthHost: false,
  ...over,
});
const refusal = (over: Partial<Parameters<typeof admit>[0]>) => {
  try {
    admit(request(over));
  } catch (e) {
    return e as GatewayRefusal;
  }
  throw new Error('admitted');
};

describe('admit', () => {
  it('proxies the normalised path, and refuses one that cannot be normalised, naming why', () => {
    expect(admit(request({ pathname: '/api/./a/../x' }))).toEqual({ kind: 'proxy', path: '/api/x' });
    expect(refusal({ pathname: '/api/%2e%2e%2f' })).toMatchObject({ code: 'invalid_request', status: 400 });
  });

  it('never proxies Gatehouse’s own paths on its host, in any case; on an app host only /.gatehouse is ours', () => {
    for (const pathname of ['/auth/x', '/AUTH/x', '/.well-known/jwks.json', '/.Gatehouse/session'])
      expect(refusal({ pathname, onAuthHost: true }), pathname).toMatchObject({ code: 'not_found' });
    expect(admit(request({ pathname: '/.GATEHOUSE/session' }))).toEqual({ kind: 'app-endpoint', path: '/.GATEHOUSE/session' });
    expect(admit(request({ pathname: '/auth/x' }))).toEqual({ kind: 'proxy', path: '/auth/x' });
  });

  it('refuses a real API key anywhere in the URL, escaped or not, and only a real one', () => {
    const key = formatApiKey('abcdefghijklmnop', 'S'.repeat(43));
    for (const over of [
      { search: `?api_key=${key}` },
      { search: `?k=${encodeURIComponent(key).replace(/_/g, '%5F')}` },
      { pathname: `/keys/${key}` },
    ])
      expect(refusal(over), JSON.stringify(over)).toMatchObject({ code: 'invalid_request', status: 400 });
    // Look-alikes whose check does not match are somebody else's text: passed on.
    expect(admit(request({ search: `?q=${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}` })).kind).toBe('proxy');
    expect(admit(request({ search: '?q=gk_%E0%A4' })).kind).toBe('proxy');
  });

  it('forwards RFC 9110’s methods only, listing them in Allow', () => {
    for (const method of METHODS) expect(admit(request({ method })).kind).toBe('proxy');
    for (const method of ['PROPPATCH', 'patch', 'TRACE', 'CONNECT']) {
      const e = refusal({ method });
      expect(e).toBeInstanceOf(GatewayRefusal);
      expect(e).toMatchObject({
        code: 'method_not_allowed',
        status: 405,
        headers: { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
      });
    }
  });

  it('refuses a service worker script from /, not from below a directory', () => {
    expect(refusal({ pathname: '/sw.js', serviceWorker: true })).toMatchObject({ code: 'forbidden' });
    expect(admit(request({ pathname: '/app/sw.js', serviceWorker: true })).kind).toBe('proxy');
    expect(admit(request({ pathname: '/sw.js' })).kind).toBe('proxy');
  });
});
