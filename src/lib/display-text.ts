import * as z from 'zod';

/**
 * Text Gatehouse shows people (a client's or an API's name on a consent page, a scope's
 * description, a key's name in a list): trimmed, bounded, no control characters and no
 * bidirectional overrides, which could reorder what a page says.
 */
export const displayText = (what: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${what} is required`)
    .max(max)
    .regex(/^[^\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]*$/u, `${what} must not contain control or bidirectional-override characters`);
