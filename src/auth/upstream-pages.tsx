import type { FC } from 'hono/jsx';
import { Form, Layout, ProofFields } from '../ui/layout';
import { en } from '../ui/messages';

/** A provider's button as a page shows it. */
export interface ProviderButton {
  id: string;
  displayName: string;
  iconUrl: string | null;
}

/**
 * "Continue with …" buttons: each a form posting to the provider's start (CSRF-checked), carrying
 * where to come back to. Nothing when there are none.
 */
export const UpstreamButtons: FC<{ providers: ProviderButton[]; csrf: string; returnTo?: string | undefined }> = (p) =>
  p.providers.length === 0 ? null : (
    <section class="upstream" aria-label={en.upstream.heading}>
      <p>{en.upstream.heading}</p>
      {p.providers.map((provider) => (
        <Form action={`/auth/upstream/${provider.id}`} csrf={p.csrf} class="inline">
          {p.returnTo && <input type="hidden" name="return_to" value={p.returnTo} />}
          <button type="submit" data-provider={provider.id}>
            {provider.iconUrl && <img src={provider.iconUrl} alt="" width="16" height="16" />}{' '}
            {en.upstream.continueWith(provider.displayName)}
          </button>
        </Form>
      ))}
    </section>
  );

/** The signed-in person confirms linking the waiting upstream account to theirs, then goes on to `returnTo`. */
export const ConfirmLinkPage: FC<{
  /** Which pending link this page shows (the form confirms that one only). */
  pending: string;
  provider: string;
  account: string;
  email: string;
  returnTo: string;
  csrf: string;
  askProof: boolean;
  error?: string;
}> = (p) => (
  <Layout title={en.upstream.confirmTitle(p.provider)}>
    <p>{en.upstream.confirmBody(p.provider, p.account, p.email)}</p>
    <Form action={`/auth/upstream/link?${new URLSearchParams({ return_to: p.returnTo })}`} csrf={p.csrf}>
      <input type="hidden" name="pending" value={p.pending} />
      {p.askProof && <ProofFields error={p.error} />}
      <div class="actions">
        <button class="primary" type="submit" name="decision" value="link">
          {en.upstream.confirmLink}
        </button>
        <button type="submit" name="decision" value="cancel">
          {en.upstream.cancel}
        </button>
      </div>
    </Form>
  </Layout>
);

/** A linked identity as the account page lists it. */
export interface IdentityRow {
  id: string;
  providerName: string;
  email: string | null;
  name: string | null;
}

/** The account page's linked accounts: each with Unlink; a Link button per enabled provider (a second account there may be linked too). */
export const LinkedAccountsSection: FC<{ identities: IdentityRow[]; linkable: ProviderButton[]; csrf: string; askProof: boolean }> = (
  p,
) => (
  <section aria-labelledby="linked-accounts">
    <h2 id="linked-accounts">{en.upstream.linkedTitle}</h2>
    {p.identities.length === 0 ? (
      <p>{en.upstream.noneLinked}</p>
    ) : (
      <ul>
        {p.identities.map((i) => (
          <li data-identity={i.id}>
            <strong>{i.providerName}</strong> {i.email ?? i.name ?? ''}
            <Form action={`/auth/account/identities/${encodeURIComponent(i.id)}/unlink`} csrf={p.csrf} class="inline">
              {p.askProof && <ProofFields />}
              <button type="submit" aria-label={`${en.upstream.unlink} ${i.providerName}`}>
                {en.upstream.unlink}
              </button>
            </Form>
          </li>
        ))}
      </ul>
    )}
    {p.linkable.map((provider) => (
      <Form action={`/auth/account/identities/link/${provider.id}`} csrf={p.csrf} class="inline">
        {p.askProof && <ProofFields />}
        <button type="submit" data-link-provider={provider.id}>
          {en.upstream.link(provider.displayName)}
        </button>
      </Form>
    ))}
  </section>
);
