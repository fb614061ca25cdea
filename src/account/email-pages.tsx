import type { FC } from 'hono/jsx';
import type { FormState } from '../ui/components';
import { Alert, BackToAccount, Field, Form, Layout, ProofFields } from '../ui/layout';
import { en } from '../ui/messages';

/** Asks for the new address (and, where an origin shares Gatehouse's host, a proof). */
export const EmailChangePage: FC<FormState & { current: string | null; askProof: boolean; value?: string }> = (s) => (
  <Layout title={en.emailChange.title}>
    <Alert message={s.field === 'email' ? undefined : s.error} />
    <p>{s.current ? en.emailChange.current(s.current) : en.emailChange.none}</p>
    <p>{en.emailChange.how}</p>
    <Form action="/auth/account/email" csrf={s.csrf}>
      <Field
        name="email"
        label={en.emailChange.newAddress}
        type="email"
        autocomplete="email"
        maxlength={254}
        value={s.value ?? ''}
        error={s.field === 'email' ? s.error : undefined}
        autofocus
      />
      {s.askProof && <ProofFields error={s.field === 'proof' ? s.error : undefined} />}
      <button class="primary" type="submit">
        {en.emailChange.submit}
      </button>
    </Form>
    <BackToAccount />
  </Layout>
);

/**
 * The page a mailed link opens: a button that posts the token (a GET never changes anything, so a
 * mail scanner that follows links uses nothing up).
 */
export const EmailLinkPage: FC<{ csrf: string; action: string; token: string; title: string; intro: string; submit: string }> = (p) => (
  <Layout title={p.title}>
    <p>{p.intro}</p>
    <Form action={p.action} csrf={p.csrf}>
      <input type="hidden" name="token" value={p.token} />
      <button class="primary" type="submit">
        {p.submit}
      </button>
    </Form>
  </Layout>
);
