import * as z from 'zod';
import { confirmEmailChange, CONFIRM_MINUTES, requestEmailChange, undoEmailChange } from '../auth/email-change';
import { proofFromForm } from '../auth/page-forms';
import { emailField, shownEmail } from '../identity/email';
import { clearCookie, COOKIES, readCookie, writeCookie } from '../lib/cookies';
import { deferTo } from '../lib/defer';
import { GatehouseError } from '../lib/errors';
import { parseInput } from '../lib/request-body';
import { requestMeta } from '../lib/request-meta';
import { router } from '../lib/router';
import { clearSessionCookie, requireSession } from '../sessions/middleware';
import { MessagePage } from '../ui/components';
import { en } from '../ui/messages';
import { loadAccount } from './account-sessions';
import { EmailChangePage, EmailLinkPage } from './email-pages';

/**
 * Changing the address on the hosted pages (docs/privacy.md, "Email change"): the form, then the
 * two mailed links — confirm (new address) and undo (old address) — each a page with a button, so
 * that opening a link changes nothing by itself. Mounted under the hosted pages' CSRF check.
 */
export const emailPages = router('page');

const changeForm = z.object({ email: emailField });
const tokenForm = z.object({ token: z.string({ error: 'token is required' }).min(1).max(200, 'token is too long') });

emailPages.get('/account/email', requireSession, async (c) => {
  const { user } = await loadAccount(c.var.deps, c.var.session);
  return c.html(
    <EmailChangePage csrf={c.var.csrfToken} current={shownEmail(user.email)} askProof={c.var.deps.config.gateway.sharedHost} />,
  );
});

emailPages.post('/account/email', requireSession, async (c) => {
  const { deps } = c.var;
  const raw = await c.req.parseBody();
  try {
    const { email } = await parseInput(c, 'form', changeForm);
    const { binding } = await requestEmailChange(
      deps,
      c.var.session,
      { email, proof: await proofFromForm(c) },
      requestMeta(c),
      deferTo(c, 'email_change_mail_failed'),
    );
    writeCookie(c, COOKIES.emailChange, binding, CONFIRM_MINUTES * 60);
    return c.html(
      <MessagePage
        title={en.emailChange.title}
        body={en.emailChange.sent(email)}
        link={{ href: '/auth/account', label: en.mfa.codesDone }}
      />,
    );
  } catch (e) {
    if (!(e instanceof GatehouseError && e.status < 500 && e.extra.field)) throw e;
    return c.html(
      <EmailChangePage
        csrf={c.var.csrfToken}
        current={shownEmail(c.var.session.email)}
        askProof={deps.config.gateway.sharedHost}
        value={typeof raw.email === 'string' ? raw.email.slice(0, 254) : ''}
        error={e.message}
        field={e.extra.field}
      />,
      e.status as 400,
    );
  }
});

/**
 * A mailed link opens a page with a button, and only the button's POST acts: a mail scanner that
 * follows links uses nothing up. The confirm and undo links differ only in their words.
 */
const LINK_PAGES = {
  confirm: { title: en.emailChange.confirmTitle, intro: en.emailChange.confirmIntro, submit: en.emailChange.confirmSubmit },
  undo: { title: en.emailChange.undoTitle, intro: en.emailChange.undoIntro, submit: en.emailChange.undoSubmit },
} as const;

for (const [kind, words] of Object.entries(LINK_PAGES))
  emailPages.get(`/account/email/${kind}`, (c) =>
    c.html(
      <EmailLinkPage
        csrf={c.var.csrfToken}
        action={`/auth/account/email/${kind}`}
        token={(c.req.query('token') ?? '').slice(0, 200)}
        {...words}
      />,
    ),
  );

emailPages.post('/account/email/confirm', async (c) => {
  const { token } = await parseInput(c, 'form', tokenForm);
  const session = c.var.session;
  await confirmEmailChange(
    c.var.deps,
    token,
    readCookie(c, COOKIES.emailChange),
    session,
    requestMeta(c),
    deferTo(c, 'email_change_mail_failed'),
  );
  clearCookie(c, COOKIES.emailChange);
  if (session) return c.redirect('/auth/account?email=changed', 303);
  return c.html(
    <MessagePage
      title={en.emailChange.confirmTitle}
      body={en.emailChange.changed}
      link={{ href: '/auth/sign-in', label: en.signIn.title }}
    />,
  );
});

emailPages.post('/account/email/undo', async (c) => {
  const { token } = await parseInput(c, 'form', tokenForm);
  await undoEmailChange(c.var.deps, token, requestMeta(c));
  clearSessionCookie(c);
  return c.html(
    <MessagePage title={en.emailChange.undoTitle} body={en.emailChange.undone} link={{ href: '/auth/sign-in', label: en.signIn.title }} />,
  );
});
