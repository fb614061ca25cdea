import { expect } from 'vitest';
import { ConfigError, parseConfig, type Env } from '../../src/config';

/** A complete production configuration: each test changes what it is about. */
export const base: Partial<Env> = {
  ENVIRONMENT: 'production',
  PUBLIC_URL: 'https://auth.example.com',
  AUTH_SECRET: 'dGVzdC1vbmx5LWF1dGgtc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg',
  KEY_ENCRYPTION_KEY: 'dGVzdC1vbmx5LWtleS1lbmNyeXB0aW9uLWtleS0zMmI',
  MAIL_PROVIDER: 'http',
  MAIL_HTTP_URL: 'https://mail.example.com/send',
  MAIL_HTTP_TOKEN: 'token',
};

/** The ConfigError issues `env` gets, or none. */
export const issuesOf = (env: Partial<Env>) => {
  try {
    parseConfig(env);
    return [];
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as ConfigError).issues;
  }
};
