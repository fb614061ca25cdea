import * as z from 'zod';
import { GatehouseError } from '../lib/errors';
import { jsonArrayVar } from '../lib/json-var';

/**
 * Profile attributes the operator declares (PROFILE_ATTRIBUTES, docs/privacy.md "Profile"): each
 * with an id, a title, a type (string, number, boolean, or one of a list), its limits, and who needs
 * it — `required: true` (every app: asked after sign-in, once, before any app gets a code) or
 * `clients: [...]` (only those apps). The values live on the user record (`profile_attributes`, a
 * JSON object); the person sets them on their profile, or when an app needs one they lack
 * (progressive profiling, oauth/authorize.ts).
 */

const attributeSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/, 'must be a lowercase identifier like company'),
    title: z.string().trim().min(1, 'is required').max(120, 'must be at most 120 characters'),
    type: z.enum(['string', 'number', 'boolean', 'enum']),
    /** string: the longest value (characters). */
    maxLength: z.number().int().min(1).max(2000).default(200),
    /** number: the bounds. */
    min: z.number().optional(),
    max: z.number().optional(),
    /** enum: the allowed values. */
    values: z.array(z.string().min(1).max(100)).min(1).max(100).optional(),
    required: z.boolean().default(false),
    clients: z.array(z.string().min(1).max(200)).max(100).default([]),
  })
  .strict()
  .superRefine((a, ctx) => {
    if (a.type === 'enum' && !a.values) ctx.addIssue({ code: 'custom', path: ['values'], message: 'is required for an enum' });
    if (a.type !== 'enum' && a.values) ctx.addIssue({ code: 'custom', path: ['values'], message: 'is only for an enum' });
    if (a.min !== undefined && a.max !== undefined && a.min > a.max)
      ctx.addIssue({ code: 'custom', path: ['min'], message: 'is above max' });
  });

export type ProfileAttribute = z.output<typeof attributeSchema>;
export type AttributeValue = string | number | boolean;

/** PROFILE_ATTRIBUTES: a JSON array of attributes, ids unique. */
export const attributesSchema = jsonArrayVar('attributes').pipe(
  z
    .array(attributeSchema)
    .max(50)
    .superRefine((attributes, ctx) => {
      const seen = new Set<string>();
      attributes.forEach((a, i) => {
        if (seen.has(a.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `${a.id} is declared twice` });
        seen.add(a.id);
      });
    }),
);

/** The zod type of one attribute's value. */
function valueSchema(a: ProfileAttribute): z.ZodType<AttributeValue> {
  switch (a.type) {
    case 'string':
      return z.string().trim().min(1).max(a.maxLength);
    case 'number': {
      let n = z.number();
      if (a.min !== undefined) n = n.min(a.min);
      if (a.max !== undefined) n = n.max(a.max);
      return n;
    }
    case 'boolean':
      return z.boolean();
    case 'enum':
      return z.enum(a.values as [string, ...string[]]);
  }
}

/** A change of attribute values: only declared ids, each of its type (null clears one). */
export function attributesChange(attributes: ProfileAttribute[]) {
  return z.object(Object.fromEntries(attributes.map((a) => [a.id, valueSchema(a).nullable().optional()]))).strict();
}

/** The values stored (a JSON object), keeping only declared attributes whose value still fits. */
export function readAttributes(column: string, attributes: ProfileAttribute[]): Record<string, AttributeValue> {
  let stored: Record<string, unknown> = {};
  try {
    const v = JSON.parse(column) as unknown;
    if (v && typeof v === 'object' && !Array.isArray(v)) stored = v as Record<string, unknown>;
  } catch {
    // an unreadable column reads as empty
  }
  const out: Record<string, AttributeValue> = {};
  for (const a of attributes) {
    const parsed = valueSchema(a).safeParse(stored[a.id]);
    if (parsed.success) out[a.id] = parsed.data;
  }
  return out;
}

/** The stored values after a change (null removes one). */
export function mergeAttributes(current: Record<string, AttributeValue>, change: Record<string, AttributeValue | null | undefined>) {
  const next: Record<string, AttributeValue> = { ...current };
  for (const [id, value] of Object.entries(change)) {
    if (value === null) delete next[id];
    else if (value !== undefined) next[id] = value;
  }
  return next;
}

/** The attributes an app needs that the person has not given: every required one, and those naming this client. */
export const missingFor = (attributes: ProfileAttribute[], values: Record<string, AttributeValue>, clientId: string) =>
  attributes.filter((a) => (a.required || a.clients.includes(clientId)) && values[a.id] === undefined);

/**
 * The attributes a sign-up gives: every `required` one (each of its type), and any other declared
 * one the form filled in. Checked before anything is stored or mailed; a 400 names
 * `attributes.<id>`. None declared: nothing is asked, and nothing is taken.
 */
export function signUpAttributes(
  attributes: ProfileAttribute[],
  given: Record<string, unknown> | undefined,
): Record<string, AttributeValue> {
  if (attributes.length === 0) return {};
  const values = given ?? {};
  for (const a of attributes)
    if (a.required && (values[a.id] === undefined || values[a.id] === null || values[a.id] === ''))
      throw new GatehouseError('invalid_request', `${a.title} is required.`, { field: `attributes.${a.id}` });
  const parsed = attributesChange(attributes).safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    // An undeclared attribute is a strict object's unrecognized key: named by the key, not a path.
    const id = issue.code === 'unrecognized_keys' ? (issue.keys[0] ?? '') : issue.path[0] === undefined ? '' : String(issue.path[0]);
    const a = attributes.find((x) => x.id === id);
    throw new GatehouseError(
      'invalid_request',
      a ? `${a.title} is not valid.` : `${id || 'attributes'} is not an attribute this site asks for.`,
      { field: id ? `attributes.${id}` : 'attributes' },
    );
  }
  return mergeAttributes({}, parsed.data);
}

/** What a form's `attr_<id>` fields say, typed: an empty field is no value, a number is read as one, an unticked box is false. */
export function attributesFromForm(attributes: ProfileAttribute[], read: (name: string) => string): Record<string, AttributeValue | null> {
  const out: Record<string, AttributeValue | null> = {};
  for (const a of attributes) {
    const raw = read(`attr_${a.id}`);
    out[a.id] = a.type === 'boolean' ? raw === 'true' : raw === '' ? null : a.type === 'number' ? Number(raw) : raw;
  }
  return out;
}
