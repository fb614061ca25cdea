import { accountPages } from './account/page-routes';
import { emailPages } from './account/email-page-routes';
import { profilePages } from './account/profile-page-routes';
import { authPages } from './auth/page-routes';
import { secondFactorPages } from './auth/second-factor-routes';
import { purposesPages } from './auth/purposes-routes';
import { upstreamPages } from './auth/upstream-routes';
import { limitPostsPerIp } from './lib/rate-limit';
import { router } from './lib/router';
import { csrfProtection } from './ui/csrf';
import { PASSKEY_SCRIPT } from './ui/generated/passkeys.bundle';
import { PASSKEY_SCRIPT_PATH, STYLESHEET, STYLESHEET_PATH } from './ui/layout';

/**
 * The hosted pages under /auth — sign-in and its methods, the second step, the account — with
 * what they share: their assets, no-store, the CSRF check on every form, and the per-IP limit on
 * the posts that check a credential. Forms post back to their own path (docs/api.md lists both
 * faces).
 */
export const pages = router('page');

pages.get(STYLESHEET_PATH.replace('/auth', ''), (c) =>
  c.body(STYLESHEET, 200, { 'content-type': 'text/css; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
);
pages.get(PASSKEY_SCRIPT_PATH.replace('/auth', ''), (c) =>
  c.body(PASSKEY_SCRIPT, 200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'public, max-age=3600' }),
);

pages.use('/*', async (c, next) => {
  c.header('cache-control', 'no-store');
  await next();
});
pages.use('/*', csrfProtection);

const credentialPosts = [
  '/sign-up',
  '/sign-in',
  '/second-factor',
  '/purposes',
  '/email-sign-in',
  '/email-sign-in/code',
  '/email-sign-in/link',
  '/forgot-password',
  '/reset-password',
  '/verify-email',
  '/account/totp',
  '/account/email',
  '/upstream/:provider',
];
limitPostsPerIp(pages, credentialPosts);
pages.route('/', secondFactorPages);
pages.route('/', purposesPages);
pages.route('/', authPages);
pages.route('/', accountPages);
pages.route('/', emailPages);
pages.route('/', profilePages);
pages.route('/', upstreamPages);
