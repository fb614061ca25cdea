import { exports } from 'cloudflare:workers';
import { expect, it } from 'vitest';

it('serves the sign-in page', async () => {
  const res = await exports.default.fetch('https://gatehouse.test/auth/sign-in');
  expect(res.status).toBe(200);
  expect(await res.text()).toContain('autocomplete="current-password"');
});
