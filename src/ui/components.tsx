import type { FC } from 'hono/jsx';
import { Alert, Form, Layout, ProofFields } from './layout';
import { en } from './messages';

// Pages every feature renders with: a message, the way out of a form post, the proof step, and the
// state a re-rendered form shows.

/** What a re-rendered form shows: the error, which field it belongs to, and what was typed (never secrets). */
export interface FormState {
  csrf: string;
  email?: string;
  error?: string;
  field?: string;
}

export const MessagePage: FC<{ title: string; body: string; link?: { href: string; label: string }; status?: 'error' }> = (p) => (
  <Layout title={p.title}>
    {p.status === 'error' ? <Alert message={p.body} /> : <p role="status">{p.body}</p>}
    {p.link && (
      <p>
        <a href={p.link.href}>{p.link.label}</a>
      </p>
    )}
  </Layout>
);

/**
 * Leaves a form post for another site. The pages' CSP allows forms to submit only to Gatehouse
 * (form-action 'self'), and browsers apply that to every redirect after a submission — so a form
 * whose outcome is a client's redirect URI ends here, and this page (no longer a submission)
 * navigates on.
 */
export const ContinuePage: FC<{ href: string }> = ({ href }) => (
  <Layout title="Continue" refreshTo={href}>
    <p role="status">
      <a href={href}>Continue</a>
    </p>
  </Layout>
);

/**
 * Asked when a sensitive action came without the proof it needs (an origin shares Gatehouse's
 * host): the same action again, its fields kept, with the password or a code.
 */
export const ConfirmActionPage: FC<{ csrf: string; action: string; fields: Record<string, string>; error?: string | undefined }> = (p) => (
  <Layout title={en.proof.title}>
    <p>{en.proof.intro}</p>
    <Form action={p.action} csrf={p.csrf}>
      {Object.entries(p.fields).map(([name, value]) => (
        <input type="hidden" name={name} value={value} />
      ))}
      <ProofFields error={p.error} />
      <button class="primary" type="submit">
        {en.proof.submit}
      </button>
    </Form>
  </Layout>
);
