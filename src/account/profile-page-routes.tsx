import { ownProfile, ownProfileChange, updateOwnProfile } from '../auth/own-profile';
import { GatehouseError } from '../lib/errors';
import { requestMeta } from '../lib/request-meta';
import { router } from '../lib/router';
import { requireSession } from '../sessions/middleware';
import { ProfilePage } from './profile-pages';

/** The profile form on the hosted pages (the JSON API's PATCH /auth/api/profile, as a form). */
export const profilePages = router('page');

profilePages.get('/account/profile', requireSession, async (c) =>
  c.html(<ProfilePage csrf={c.var.csrfToken} values={await ownProfile(c.var.deps, c.var.session)} />),
);

profilePages.post('/account/profile', requireSession, async (c) => {
  const form = await c.req.parseBody();
  // Each field of the form is sent; an empty one clears the claim.
  const values = Object.fromEntries(
    ['name', 'locale', 'zoneinfo'].map((k) => [k, typeof form[k] === 'string' ? (form[k] as string).trim() : '']),
  );
  const parsed = ownProfileChange.safeParse(Object.fromEntries(Object.entries(values).map(([k, v]) => [k, v === '' ? null : v])));
  try {
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new GatehouseError('invalid_request', `${issue.path.join('.')}: ${issue.message}`, { field: String(issue.path[0] ?? 'body') });
    }
    await updateOwnProfile(c.var.deps, c.var.session, parsed.data, requestMeta(c));
    return c.redirect('/auth/account?profile=saved', 303);
  } catch (e) {
    if (!(e instanceof GatehouseError && e.status < 500 && e.extra.field)) throw e;
    return c.html(<ProfilePage csrf={c.var.csrfToken} values={values} error={e.message} field={e.extra.field} />, e.status as 400);
  }
});
