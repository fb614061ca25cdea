import { describe, expect, it } from 'vitest';
import { ZodError } from 'zod';
import { buildProvider, clientSecretOf, describeProvider, providerFromRow, type ProviderInput } from '../../src/auth/upstream-providers';
import { KEK } from './upstream-helpers';

const base = {
  id: 'acme',
  kind: 'oidc',
  displayName: 'Acme',
  issuer: 'https://id.acme.example',
  clientId: 'gatehouse',
  clientSecret: 'upstream-client-secret-value',
} satisfies ProviderInput;

/** The problems buildProvider names for an input, as `path: message`. */
async function problems(input: Record<string, unknown>): Promise<string[]> {
  try {
    await buildProvider(input as ProviderInput, KEK, 0);
    return [];
  } catch (e) {
    if (!(e instanceof ZodError)) throw e;
    return e.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  }
}

describe('adding an upstream provider', () => {
  it('seals the client secret under its own provider id: the row never holds it, another id cannot open it', async () => {
    const row = await buildProvider(base, KEK, 1);
    expect(JSON.stringify(row)).not.toContain(base.clientSecret);
    const provider = providerFromRow(row);
    expect(await clientSecretOf(provider, KEK)).toBe(base.clientSecret);
    await expect(clientSecretOf({ ...provider, id: 'other' }, KEK)).rejects.toThrow();
    const shown = describeProvider(provider, 'https://gh.example/auth/upstream/acme/callback');
    expect(JSON.stringify(shown)).not.toContain(base.clientSecret);
    expect(shown).toMatchObject({
      id: 'acme',
      issuer: 'https://id.acme.example',
      callback_url: 'https://gh.example/auth/upstream/acme/callback',
    });
  });

  it('gives each preset its fixed issuer and scopes, and Entra its tenant', async () => {
    const google = providerFromRow(await buildProvider({ ...base, kind: 'google', issuer: undefined }, KEK, 0));
    expect(google).toMatchObject({ issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'] });
    const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
    const entra = providerFromRow(await buildProvider({ ...base, kind: 'entra', issuer: undefined, tenant }, KEK, 0));
    expect(entra.issuer).toBe(`https://login.microsoftonline.com/${tenant}/v2.0`);
  });

  it('names every problem in an input, and refuses what would be unsafe', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...base, id: 'Acme!' }, 'id: must be 2–32 of a-z 0-9 -'],
      [{ ...base, id: 'link' }, 'id: must not be link'],
      [{ ...base, kind: 'myspace' }, 'kind: must be one of oidc, google, entra, apple, github'],
      [{ ...base, issuer: undefined }, 'issuer: is required for an OpenID Provider'],
      [{ ...base, issuer: 'http://id.acme.example' }, 'issuer:'],
      [{ ...base, kind: 'google' }, 'issuer: is fixed for google'],
      [{ ...base, clientSecret: undefined }, 'clientSecret: is required'],
      [{ ...base, kind: 'apple', issuer: undefined, clientSecret: undefined }, 'apple: Apple needs teamId, keyId and privateKey'],
      [{ ...base, kind: 'entra', issuer: undefined, tenant: 'contoso' }, 'tenant: must be common, organizations, consumers or a tenant id'],
      [
        { ...base, kind: 'entra', issuer: undefined, trustedEmailDomains: ['contoso.com'] },
        "trustedEmailDomains: Entra's email claim is not verified",
      ],
      [{ ...base, tenant: 'common' }, 'tenant: is for Entra only'],
      [{ ...base, trustedEmailDomains: ['not a domain'] }, 'trustedEmailDomains.0: must be a domain name or *'],
      [{ ...base, scopes: ['openid', 'a"b'] }, 'scopes.1: is not a scope'],
      [{ ...base, clientSecretEncrypted: 'x' }, 'Unrecognized key'],
    ];
    for (const [input, expected] of cases) {
      const found = await problems(input);
      expect(found.join('\n'), JSON.stringify(input)).toContain(expected);
    }
  });
});
