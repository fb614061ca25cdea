import { describe, expect, it } from 'vitest';
import { type ConfigError, parseConfig } from '../../src/config';
import { base } from './helpers';

describe('dynamic registration configuration', () => {
  it('is off by default, PKCE kept; REGISTRATION_TOKEN turns it on and REGISTRATION_PKCE_OPTIONAL is a true/false flag', () => {
    expect(parseConfig(base).registration).toEqual({ initialToken: null, pkceOptional: false });
    const token = 'a'.repeat(43);
    expect(parseConfig({ ...base, REGISTRATION_TOKEN: token, REGISTRATION_PKCE_OPTIONAL: 'true' }).registration).toEqual({
      initialToken: token,
      pkceOptional: true,
    });
    expect(parseConfig({ ...base, REGISTRATION_PKCE_OPTIONAL: 'false' }).registration.pkceOptional).toBe(false);
    for (const [name, value] of [
      ['REGISTRATION_PKCE_OPTIONAL', 'yes'],
      ['REGISTRATION_PKCE_OPTIONAL', '1'],
      ['REGISTRATION_TOKEN', 'short'],
    ]) {
      let issues: string[] = [];
      try {
        parseConfig({ ...base, [name!]: value });
      } catch (e) {
        issues = (e as ConfigError).issues;
      }
      expect(issues.length, `${name}=${value}`).toBe(1);
      expect(issues[0]).toMatch(new RegExp(`^${name}: `));
      expect(issues[0]).not.toContain(value);
    }
  });
});
