import * as z from 'zod';

/** Trim, Unicode NFC, lower-case. Two spellings of one address map to one account. */
export function normaliseEmail(raw: string): string {
  return raw.trim().normalize('NFC').toLowerCase();
}

/** An email at the system's edge: at most 254 characters (RFC 5321), one @, no spaces or controls. */
export const emailField = z
  .string({ error: 'email is required' })
  .max(320, 'email is too long')
  .transform(normaliseEmail)
  .pipe(
    z
      .string()
      .min(3, 'email is too short')
      .max(254, 'email is too long')
      .regex(/^[^\s@\p{Cc}]+@[^\s@\p{Cc}]+\.[^\s@\p{Cc}]+$/u, 'email is not a valid address'),
  );
