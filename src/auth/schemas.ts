import * as z from 'zod';
import { emailField } from '../identity/email';
import { PASSWORD_MAX_LENGTH } from './password-policy';

// Inputs at the system's edge. Passwords are taken exactly as typed (no trimming); the length
// policy is applied by checkNewPassword so its message can name the configured minimum.

const password = z
  .string({ error: 'password is required' })
  .min(1, 'password is required')
  .max(PASSWORD_MAX_LENGTH * 4, `password must be at most ${PASSWORD_MAX_LENGTH} characters`);
const token = z.string({ error: 'token is required' }).min(1, 'token is required').max(256, 'token is not valid');

/** `method: passkey` signs up with no password: the account gets its passkey once the address is confirmed. */
export const signUpInput = z
  .object({
    email: emailField,
    password: password.optional(),
    method: z.enum(['password', 'passkey']).default('password'),
    /** PROFILE_ATTRIBUTES values (checked against the configuration by signUp: identity/profile-attributes.ts). */
    attributes: z.record(z.string().max(40), z.unknown(), { error: 'attributes must be an object' }).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.method === 'password' && !v.password) ctx.addIssue({ code: 'custom', path: ['password'], message: 'password is required' });
  })
  .transform((v) => ({
    email: v.email,
    password: v.method === 'passkey' ? null : v.password!,
    ...(v.attributes ? { attributes: v.attributes } : {}),
  }));
export const signInInput = z.object({ email: emailField, password });
export const forgotPasswordInput = z.object({ email: emailField });
export const resetPasswordInput = z.object({ token, password });
export const verifyEmailInput = z.object({ token });

export const secondFactorInput = z.object({
  code: z.string({ error: 'code is required' }).trim().min(1, 'code is required').max(32, 'code is not valid'),
});

// base64url that decodes: the alphabet, and no length that leaves a lone character (4n + 1).
const b64url = z
  .string()
  .max(16_384)
  .regex(/^[A-Za-z0-9_-]*$/, 'must be base64url')
  .refine((v) => v.length % 4 !== 1, 'must be base64url');
const challengeId = z.string({ error: 'challengeId is required' }).regex(/^[A-Za-z0-9_-]{22}$/, 'challengeId is not valid');
const credentialFields = {
  id: b64url.min(1, 'id is required').max(1366),
  rawId: b64url.min(1),
  type: z.literal('public-key'),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
};

/** What @simplewebauthn/browser's startAuthentication() returns, as posted back. */
export const passkeyAssertionInput = z.object({
  challengeId,
  response: z.object({
    ...credentialFields,
    response: z.object({
      clientDataJSON: b64url.min(1),
      authenticatorData: b64url.min(1),
      signature: b64url.min(1),
      userHandle: b64url.optional(),
    }),
  }),
  returnTo: z.string().max(2048).optional(),
});

/**
 * A proof given at the moment of a sensitive action (auth/recent-auth.ts): the password, a code
 * from the authenticator app (or a recovery code), or a passkey assertion.
 */
export const proofInput = z.union(
  [
    z.object({ password }).strict(),
    z.object({ code: secondFactorInput.shape.code }).strict(),
    z.object({ passkey: passkeyAssertionInput.omit({ returnTo: true }) }).strict(),
  ],
  { error: 'proof must be { password }, { code } or { passkey }' },
);

/** The `proof` field a sensitive JSON request may carry. */
export const withProof = { proof: proofInput.optional() };

/** A password change (or a first password): the current one, or a proof, or neither after a recent sign-in. */
export const changePasswordInput = z.object({
  currentPassword: z
    .string()
    .min(1, 'currentPassword must not be empty')
    .max(PASSWORD_MAX_LENGTH * 4, `currentPassword must be at most ${PASSWORD_MAX_LENGTH} characters`)
    .optional(),
  newPassword: z
    .string({ error: 'newPassword is required' })
    .min(1, 'newPassword is required')
    .max(PASSWORD_MAX_LENGTH * 4, `newPassword must be at most ${PASSWORD_MAX_LENGTH} characters`),
  ...withProof,
});

/** What startRegistration() returns, with the name the person gave the passkey. */
export const passkeyRegistrationInput = z.object({
  ...withProof,
  challengeId,
  name: z.string().trim().min(1, 'name is required').max(64, 'name must be at most 64 characters').default('Passkey'),
  response: z.object({
    ...credentialFields,
    response: z.object({
      clientDataJSON: b64url.min(1),
      attestationObject: b64url.min(1),
      transports: z.array(z.string().max(32)).max(10).optional(),
      authenticatorData: b64url.optional(),
      publicKey: b64url.optional(),
      publicKeyAlgorithm: z.number().int().optional(),
    }),
  }),
});

/** Answers to consent purposes: each accepts or refuses one purpose at the version shown. */
export const purposeDecisionsInput = z.object({
  decisions: z
    .array(
      z.object({
        purpose: z.string({ error: 'purpose is required' }).min(1, 'purpose is required').max(64, 'purpose is not valid'),
        version: z.string({ error: 'version is required' }).min(1, 'version is required').max(32, 'version is not valid'),
        granted: z.boolean({ error: 'granted must be true or false' }),
      }),
      { error: 'decisions must be a list of { purpose, version, granted }' },
    )
    .max(32, 'decisions has too many entries'),
});

/** Deleting one's account: the typed confirmation (the address, or `delete`) and, optionally, a proof. */
export const deleteAccountInput = z.object({
  confirm: z.string({ error: 'confirm is required' }).max(320, 'confirm is too long'),
  ...withProof,
});

/** Changing one's address: the new one and, optionally, a proof. */
export const changeEmailInput = z.object({
  email: emailField,
  ...withProof,
});
