import * as z from 'zod';
import { jsonArrayVar } from '../lib/json-var';

/**
 * A purpose the operator asks people to agree to (terms of service, privacy policy, marketing
 * mail, analytics): its stable id, the title shown, the version in force and, optionally, where its
 * text lives. A required purpose must be accepted at its current version to finish a sign-in; a new
 * version asks everyone again at their next sign-in. Optional ones are managed on the account page.
 */
export interface Purpose {
  id: string;
  title: string;
  version: string;
  required: boolean;
  url: string | null;
}

const purposeSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a lowercase identifier like marketing_email'),
    title: z.string().trim().min(1, 'is required').max(120, 'must be at most 120 characters'),
    version: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/, 'must be 1–32 letters, digits, dots, dashes or underscores'),
    required: z.boolean().default(false),
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .nullable()
      .default(null),
  })
  .strict();

/** CONSENT_PURPOSES: a JSON array of purposes, ids unique (docs/configuration.md). */
export const purposesSchema = jsonArrayVar('purposes').pipe(
  z
    .array(purposeSchema)
    .max(32)
    .superRefine((purposes, ctx) => {
      const seen = new Set<string>();
      purposes.forEach((p, i) => {
        if (seen.has(p.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `${p.id} is declared twice` });
        seen.add(p.id);
      });
    }),
);
