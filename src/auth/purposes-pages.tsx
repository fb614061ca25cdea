import type { FC } from 'hono/jsx';
import type { PurposeState } from '../identity/consent-records';
import type { FormState } from '../ui/components';
import { Alert, Form, Layout } from '../ui/layout';
import { en } from '../ui/messages';

const when = (ms: number) => `${new Date(ms).toISOString().slice(0, 10)}`;

/** One purpose as a checkbox, with the version shown carried along (an answer is for what was shown). */
export const PurposeChoice: FC<{ purpose: PurposeState; checked: boolean; requiredToContinue?: boolean }> = ({
  purpose: p,
  checked,
  requiredToContinue,
}) => (
  <div class="field purpose" data-purpose={p.id}>
    <input type="hidden" name={`version_${p.id}`} value={p.version} />
    <label>
      <input type="checkbox" name="accept" value={p.id} checked={checked} required={requiredToContinue} />{' '}
      {p.url ? (
        <a href={p.url} target="_blank" rel="noopener noreferrer">
          {p.title}
        </a>
      ) : (
        p.title
      )}{' '}
      ({en.purposes.version(p.version)}, {p.required ? en.purposes.required : en.purposes.optional})
    </label>
    {p.answer && (
      <p class="hint">
        {p.answer.granted ? en.purposes.accepted : en.purposes.refused} {en.purposes.version(p.answer.version)}, {when(p.answer.at)}
        {p.answer.granted && p.answer.version !== p.version && <> — {en.purposes.outdated}</>}
      </p>
    )}
  </div>
);

/** Asked after the factors of a sign-in and before it has a session: what must be accepted to continue. */
export const PurposesPromptPage: FC<FormState & { purposes: PurposeState[]; returnTo: string }> = (s) => (
  <Layout title={en.purposes.promptTitle}>
    <p>{en.purposes.promptIntro}</p>
    <Alert message={s.error} />
    <Form action="/auth/purposes" csrf={s.csrf}>
      <input type="hidden" name="return_to" value={s.returnTo} />
      {s.purposes.map((p) => (
        <PurposeChoice purpose={p} checked={false} requiredToContinue />
      ))}
      <button class="primary" type="submit">
        {en.purposes.continue}
      </button>
    </Form>
  </Layout>
);

/** The account page's section: every purpose, its answer, and a way to change it. */
export const PurposesSection: FC<{ purposes: PurposeState[]; csrf: string }> = ({ purposes, csrf }) =>
  purposes.length === 0 ? null : (
    <section aria-labelledby="purposes">
      <h2 id="purposes">{en.purposes.title}</h2>
      <Form action="/auth/account/purposes" csrf={csrf}>
        {purposes.map((p) => (
          <PurposeChoice purpose={p} checked={p.accepted} />
        ))}
        <button type="submit">{en.purposes.save}</button>
      </Form>
    </section>
  );

/** What a purposes form posted: for each purpose it showed (its version field), accepted or not. */
export function decisionsFromForm(body: Record<string, string | File | (string | File)[]>) {
  const accepted = ([] as unknown[]).concat(body['accept'] ?? []).filter((v): v is string => typeof v === 'string');
  return Object.entries(body)
    .filter(([k, v]) => k.startsWith('version_') && typeof v === 'string')
    .slice(0, 32)
    .map(([k, v]) => {
      const purpose = k.slice('version_'.length);
      return { purpose, version: String(v).slice(0, 32), granted: accepted.includes(purpose) };
    });
}
