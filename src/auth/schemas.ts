import { z } from 'zod';
import { emailField } from '../identity/email';
import { PASSWORD_MAX_LENGTH } from './password-policy';

// Inputs at the system's edge. Passwords are taken exactly as typed (no trimming); the length
// policy is applied by checkNewPassword so its message can name the configured minimum.

const password = z
  .string({ error: 'password is required' })
  .min(1, 'password is required')
  .max(PASSWORD_MAX_LENGTH * 4, `password must be at most ${PASSWORD_MAX_LENGTH} characters`);
const token = z.string({ error: 'token is required' }).min(1, 'token is required').max(256, 'token is not valid');

export const signUpInput = z.object({ email: emailField, password });
export const signInInput = z.object({ email: emailField, password });
export const forgotPasswordInput = z.object({ email: emailField });
export const resetPasswordInput = z.object({ token, password });
export const verifyEmailInput = z.object({ token });
