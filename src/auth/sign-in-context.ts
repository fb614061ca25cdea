import type { Context } from 'hono';
import { COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { randomToken } from '../lib/crypto';
import { requestMeta } from '../lib/request-meta';
import type { SignInContext } from './risk';

/** The device cookie lives a year. */
const DEVICE_COOKIE_MAX_AGE = 365 * 86400;

/**
 * Where a sign-in comes from: meta, the device cookie (minted and set here when the browser has
 * none) and the country and ASN Cloudflare attaches to the request.
 */
export function signInContext(c: Context): SignInContext {
  let deviceId = readCookie(c, COOKIES.device);
  if (!deviceId || !/^[A-Za-z0-9_-]{43}$/.test(deviceId)) {
    deviceId = randomToken(32);
    writeCookie(c, COOKIES.device, deviceId, DEVICE_COOKIE_MAX_AGE);
  }
  const cf = (c.req.raw as { cf?: { country?: unknown; asn?: unknown } }).cf;
  return {
    meta: requestMeta(c),
    deviceId,
    country: typeof cf?.country === 'string' && /^[A-Z]{2}$/.test(cf.country) ? cf.country : null,
    asn: typeof cf?.asn === 'number' && Number.isInteger(cf.asn) ? cf.asn : null,
  };
}
