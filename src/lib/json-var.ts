import * as z from 'zod';

/** A var holding a JSON array (default `[]`), parsed before its schema checks it; `what` names it in the error. */
export const jsonArrayVar = (what: string) =>
  z
    .string()
    .default('[]')
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be a JSON array of ${what}` });
        return z.NEVER;
      }
    });
