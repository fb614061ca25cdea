import type { Context } from 'hono';
import { describeDevice, requestMeta } from '../lib/request-meta';
import type { Requester } from './handoff-object';

/** Who is asking, for a person to recognise: browser and system, IP, approximate place (request.cf). */
export function requesterOf(c: Context): Requester {
  const meta = requestMeta(c);
  const cf = (c.req.raw as { cf?: { city?: unknown; country?: unknown } }).cf;
  const place = [cf?.city, cf?.country].filter((v): v is string => typeof v === 'string' && v.length > 0 && v.length < 64).join(', ');
  return { device: meta.userAgent ? describeDevice(meta.userAgent) : 'an unknown browser', ip: meta.ip, place: place || null };
}
