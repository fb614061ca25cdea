import { describe, expect, it } from 'vitest';
import { ipKey } from '../../src/lib/rate-limit';
import { call, withinOneLimiterWindow } from '../helpers';

/** A network peer with many addresses: one IPv6 customer gets a /64 at least, so a /64 is one client. */
const randomPrefix = () => {
  const [a, b] = crypto.getRandomValues(new Uint16Array(2));
  return `2001:db8:${a!.toString(16)}:${b!.toString(16)}`;
};

describe('the per-client rate limit', () => {
  it('counts IPv6 per /64, whatever the spelling, and IPv4-mapped addresses as their IPv4 address', () => {
    const p = '2001:db8:12:34';
    const same = [
      `${p}::1`,
      `${p}:0:0:0:1`,
      `${p}:ffff:ffff:ffff:ffff`,
      `2001:0DB8:0012:0034::abcd`,
      `${p}:1:2:3:4%eth0`,
      `[${p}::5]`,
      `${p}::1.2.3.4`,
    ];
    for (const ip of same) expect(ipKey(ip), ip).toBe('ip6:2001:db8:12:34::/64');
    expect(ipKey('2001:db8:12:35::1')).not.toBe(ipKey(`${p}::1`));
    for (const ip of ['::ffff:203.0.113.5', '::203.0.113.5', '203.0.113.5', '::FFFF:203.0.113.5'])
      expect(ipKey(ip), ip).toBe('ip:203.0.113.5');
    expect(ipKey('203.0.113.6')).not.toBe(ipKey('203.0.113.5'));
    for (const bad of [null, '', 'garbage', '1:2:3', '1::2::3', '999.1.1.1.1', '::ffff:999.0.0.1'])
      expect(ipKey(bad), String(bad)).toBe('ip:unknown');
  });

  it('a peer rotating through its /64 shares one budget on credential endpoints', async () => {
    await withinOneLimiterWindow();
    const prefix = randomPrefix();
    const statuses: number[] = [];
    for (let i = 1; i <= 31; i++) {
      const ip = `${prefix}:${i.toString(16)}:${(i * 7).toString(16)}:${(i * 13).toString(16)}:${(i * 31).toString(16)}`;
      statuses.push((await call('/auth/api/forgot-password', { method: 'POST', json: { email: `nobody-${i}@example.com` }, ip })).status);
    }
    expect(statuses.slice(0, 30).every((s) => s === 202)).toBe(true);
    expect(statuses[30]).toBe(429);
    // The neighbouring /64 is another customer with its own budget.
    const next = await call('/auth/api/forgot-password', {
      method: 'POST',
      json: { email: 'nobody@example.com' },
      ip: `${randomPrefix()}::1`,
    });
    expect(next.status).toBe(202);
  });
});
