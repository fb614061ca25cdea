import type { FC } from 'hono/jsx';
import type { FormState } from '../ui/components';
import { Alert, Field, Form, Layout, ProofFields } from '../ui/layout';
import { en } from '../ui/messages';

/**
 * Deleting the account: what goes, what stays, and the confirmation — the person types their
 * address (or the word delete, for an account without one). Where an origin shares Gatehouse's
 * host a proof is asked too (ProofFields).
 */
export const DeleteAccountPage: FC<FormState & { confirmation: string; graceDays: number; askProof: boolean }> = (s) => (
  <Layout title={en.data.delete}>
    <Alert message={s.field === 'confirm' ? undefined : s.error} />
    <p>{en.data.deleteWhat}</p>
    <p>{s.graceDays > 0 ? en.data.deleteGrace(s.graceDays) : en.data.deleteNow}</p>
    <Form action="/auth/account/delete" csrf={s.csrf}>
      <Field
        name="confirm"
        label={s.confirmation === 'delete' ? en.data.confirmWord : en.data.confirmAddress(s.confirmation)}
        autocomplete="off"
        maxlength={320}
        error={s.field === 'confirm' ? s.error : undefined}
      />
      {s.askProof && <ProofFields error={s.field === 'proof' ? s.error : undefined} />}
      <button type="submit">{en.data.delete}</button>
    </Form>
    <p>
      <a href="/auth/account">{en.data.keep}</a>
    </p>
  </Layout>
);
