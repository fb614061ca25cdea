/**
 * The hosted pages' passkey script, bundled with @simplewebauthn/browser by `npm run build:client`
 * (scripts/build-client.ts) and served from /auth/assets/passkeys.js — never from a CDN.
 *
 * It wires buttons by their data-passkey attribute:
 *   sign-in   sign in with a passkey (and, where the browser supports it, passkey autofill on the
 *             email field: autocomplete="username webauthn")
 *   verify    a passkey as the second step of a sign-in, or to step up the current session
 *   register  add a passkey to the signed-in account (name from #passkey-name; where the page asks
 *             for a proof — an origin shares Gatehouse's host — the password or code typed in
 *             the page's proof fields goes along)
 */
import { browserSupportsWebAuthn, browserSupportsWebAuthnAutofill, startAuthentication, startRegistration } from '@simplewebauthn/browser';

interface Problem {
  detail?: string;
  title?: string;
}

async function post<T>(path: string, body: unknown): Promise<T> {
  const response = await fetch(path, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
  });
  const json = (await response.json().catch(() => ({}))) as T & Problem;
  if (!response.ok) throw new Error(json.detail ?? json.title ?? `Request failed (${response.status}).`);
  return json;
}

function showError(error: unknown): void {
  const box = document.querySelector<HTMLElement>('[data-passkey-error]');
  const message = error instanceof Error ? error.message : String(error);
  if (box) {
    box.textContent = message;
    box.hidden = false;
  }
}

const returnTo = (el?: HTMLElement | null): string =>
  el?.dataset['returnTo'] ?? document.querySelector<HTMLInputElement>('input[name="return_to"]')?.value ?? '/auth/account';

type Options = { challengeId: string; options: Parameters<typeof startAuthentication>[0]['optionsJSON'] };

async function authenticate(endpoint: string, target: string, autofill: boolean): Promise<void> {
  const { challengeId, options } = await post<Options>('/auth/api/passkeys/authentication-options', {});
  const response = await startAuthentication({ optionsJSON: options, useBrowserAutofill: autofill });
  const result = await post<{ next?: string }>(endpoint, { challengeId, response, returnTo: target });
  window.location.assign(result.next ?? target);
}

async function register(): Promise<void> {
  const { challengeId, options } = await post<{ challengeId: string; options: Parameters<typeof startRegistration>[0]['optionsJSON'] }>(
    '/auth/api/passkeys/registration-options',
    {},
  );
  const response = await startRegistration({ optionsJSON: options });
  const name = document.querySelector<HTMLInputElement>('#passkey-name')?.value.trim() || 'Passkey';
  const field = (n: string) => document.querySelector<HTMLInputElement>(`input[name="${n}"]`)?.value || undefined;
  const password = field('proof_password');
  const code = field('proof_code');
  const proof = password ? { password } : code ? { code } : undefined;
  await post('/auth/api/passkeys', { challengeId, response, name, ...(proof ? { proof } : {}) });
  window.location.reload();
}

function wire(): void {
  if (!browserSupportsWebAuthn()) {
    for (const b of document.querySelectorAll<HTMLButtonElement>('[data-passkey]')) b.hidden = true;
    return;
  }
  for (const button of document.querySelectorAll<HTMLButtonElement>('[data-passkey]')) {
    button.addEventListener('click', () => {
      const kind = button.dataset['passkey'];
      const run =
        kind === 'register'
          ? register()
          : authenticate(kind === 'verify' ? '/auth/api/passkeys/verify' : '/auth/api/passkeys/sign-in', returnTo(button), false);
      run.catch(showError);
    });
  }
  // Passkey autofill: the browser offers passkeys in the email field's suggestions.
  if (document.querySelector('input[autocomplete~="webauthn"]')) {
    void browserSupportsWebAuthnAutofill().then((supported) => {
      if (!supported) return;
      authenticate('/auth/api/passkeys/sign-in', returnTo(), true).catch((e: unknown) => {
        // A click on the button aborts the autofill request: that is not an error to show.
        if (!(e instanceof Error && e.name === 'AbortError')) showError(e);
      });
    });
  }
  document.documentElement.dataset['passkeysReady'] = 'true';
}

wire();
