import type { FC } from 'hono/jsx';
import type { Requester } from './handoff-object';
import { Alert, Field, Form, Layout } from '../ui/layout';
import { en } from '../ui/messages';
import type { FormState } from '../ui/components';

const t = en.handoff;

/** Tells the handoff script what this page waits for; it reports into [data-handoff-status]. */
const Waiter: FC<{ kind: string; side: 'wait' | 'own'; next?: string }> = (p) => (
  <>
    <div id="handoff" hidden data-kind={p.kind} data-role={p.side} data-next={p.next ?? '/auth/account'} />
    <p role="status" aria-live="polite" data-handoff-status>
      {t.waiting}
    </p>
  </>
);

const Code: FC<{ code: string }> = ({ code }) => (
  <p>
    {t.bindingCode}:{' '}
    <strong class="code" id="handoff-code">
      {code}
    </strong>
  </p>
);

const RequesterDetails: FC<{ requester: Requester | null }> = ({ requester }) =>
  requester ? (
    <p id="handoff-requester">
      {t.requestedFrom}: <strong>{requester.device}</strong>
      {requester.place ? `, near ${requester.place}` : ''}
      {requester.ip ? ` (${requester.ip})` : ''}
    </p>
  ) : null;

const Decision: FC<{ action: string; csrf: string; fields: Record<string, string> }> = (p) => (
  <div class="actions">
    {(['approve', 'deny'] as const).map((decision) => (
      <Form action={p.action} csrf={p.csrf} class="inline">
        {Object.entries(p.fields).map(([k, v]) => (
          <input type="hidden" name={k} value={v} />
        ))}
        <input type="hidden" name="decision" value={decision} />
        <button type="submit" class={decision === 'approve' ? 'primary' : undefined}>
          {decision === 'approve' ? t.approve : t.deny}
        </button>
      </Form>
    ))}
  </div>
);

/** Flow 1 on the new device: the QR code and binding code; signs in by itself once approved. */
export const QrSignInPage: FC<{ qr: string; code: string; link: string }> = (p) => (
  <Layout title={t.qrTitle} handoff>
    <p>{t.qrIntro}</p>
    <p>
      <img src={p.qr} alt="QR code to approve this sign-in on your phone" width={240} height={240} />
    </p>
    <details>
      <summary>No camera? Open this link on your phone</summary>
      <p>
        <a id="approve-link" href={p.link}>
          {p.link}
        </a>
      </p>
    </details>
    <Code code={p.code} />
    <Waiter kind="qr" side="wait" />
  </Layout>
);

/** Flow 1 on the phone: who is asking, the code to compare, approve or deny. */
export const ApproveSignInPage: FC<{ csrf: string; handle: string; code: string; requester: Requester | null }> = (p) => (
  <Layout title={t.approveTitle}>
    <p>{t.approveIntro}</p>
    <RequesterDetails requester={p.requester} />
    <Code code={p.code} />
    <Decision action="/auth/handoff/approve" csrf={p.csrf} fields={{ h: p.handle }} />
  </Layout>
);

/** Flow 2 on the signed-in device: QR and short code for the other device. */
export const HandOverPage: FC<{ qr: string; code: string; link: string }> = (p) => (
  <Layout title={t.continueTitle} handoff>
    <p>{t.continueIntro}</p>
    <p>
      <img src={p.qr} alt="QR code to continue on another device" width={240} height={240} />
    </p>
    <p>
      <a href={p.link}>{p.link}</a>
    </p>
    <Code code={p.code} />
    <Waiter kind="continue" side="own" next="/auth/handoff/continue/confirm" />
  </Layout>
);

/** Flow 2 on the signed-in device, once the other device joined: confirm it. */
export const ConfirmHandOverPage: FC<{ csrf: string; code: string; requester: Requester | null }> = (p) => (
  <Layout title={t.confirmTitle}>
    <p>{t.confirmIntro}</p>
    <RequesterDetails requester={p.requester} />
    <Code code={p.code} />
    <Decision action="/auth/handoff/continue/confirm" csrf={p.csrf} fields={{}} />
  </Layout>
);

/** Flow 2 on the other device: type (or bring, from the QR) the code. */
export const JoinPage: FC<FormState & { code?: string }> = (s) => (
  <Layout title={t.joinTitle}>
    <p>{t.joinIntro}</p>
    <Alert message={s.field === 'code' ? undefined : s.error} />
    <Form action="/auth/handoff/join" csrf={s.csrf}>
      <Field
        name="code"
        label={t.code}
        autocomplete="one-time-code"
        value={s.code}
        maxlength={16}
        error={s.field === 'code' ? s.error : undefined}
        autofocus
      />
      <button class="primary" type="submit">
        {t.join}
      </button>
    </Form>
  </Layout>
);

/** Flow 2 on the other device, after joining: waits for the confirmation, then continues. */
export const JoinedPage: FC<{ code: string }> = (p) => (
  <Layout title={t.joinedTitle} handoff>
    <p>{t.joinedIntro}</p>
    <Code code={p.code} />
    <Waiter kind="continue" side="wait" />
  </Layout>
);

/** RFC 8628 user-code page. */
export const DeviceCodePage: FC<FormState & { code?: string }> = (s) => (
  <Layout title={t.deviceTitle}>
    <p>{t.deviceIntro}</p>
    <Alert message={s.field === 'code' ? undefined : s.error} />
    <Form action="/auth/device" csrf={s.csrf}>
      <Field
        name="code"
        label={t.code}
        autocomplete="one-time-code"
        value={s.code}
        maxlength={16}
        error={s.field === 'code' ? s.error : undefined}
        autofocus
      />
      <button class="primary" type="submit">
        {t.deviceSubmit}
      </button>
    </Form>
  </Layout>
);

export const DeviceApprovePage: FC<{ csrf: string; code: string; clientName: string; scope: string[]; requester: Requester | null }> = (
  p,
) => (
  <Layout title={t.deviceApproveTitle}>
    <p>{t.deviceApproveIntro(p.clientName)}</p>
    <RequesterDetails requester={p.requester} />
    <Code code={p.code} />
    <p>{t.scopes}</p>
    <ul>
      {p.scope.map((s) => (
        <li>{s}</li>
      ))}
    </ul>
    <Decision action="/auth/device/decide" csrf={p.csrf} fields={{ code: p.code }} />
  </Layout>
);
