import * as z from 'zod';
import { GatehouseError } from '../lib/errors';

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

/**
 * An account made from an upstream identity that shared no address still needs a unique `email`
 * (the column is the account's handle): it gets this one, in the `.invalid` top-level domain that
 * can never receive mail (RFC 2606). Nothing is ever sent there, and no claim or header shows it.
 */
export const NO_EMAIL_DOMAIN = 'no-email.invalid';
export const placeholderEmail = (userId: string) => `${userId}@${NO_EMAIL_DOMAIN}`;
/** The address people and apps see: null for an account without one. */
export const shownEmail = (email: string): string | null => (email.endsWith(`@${NO_EMAIL_DOMAIN}`) ? null : email);

/** An address an operator gives a person (admin API, users CLI): never the placeholder domain. */
export function assertPersonalAddress(email: string): void {
  if (shownEmail(email) === null)
    throw new GatehouseError('invalid_request', `email: the ${NO_EMAIL_DOMAIN} domain is reserved`, { field: 'email' });
}
