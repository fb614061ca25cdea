import { attributesFromForm } from '../identity/profile-attributes';
import { attributesMissingFor, ownProfile, ownProfileInput, updateOwnProfile } from '../auth/own-profile';
import { safeReturnTo } from '../auth/urls';
import { invalidInput } from '../lib/request-body';
import { GatehouseError } from '../lib/errors';
import { requestMeta } from '../lib/request-meta';
import { router } from '../lib/router';
import { requireSession } from '../sessions/middleware';
import { ProfilePage, type ProfileValues } from './profile-pages';

/**
 * The profile form on the hosted pages (PATCH /auth/api/profile as a form), and the progressive
 * profiling step: an authorization request whose app needs attributes the person has not given
 * sends them here (`return_to` the request, `client_id` the app), and back once they are saved.
 */
export const profilePages = router('page');

const CLAIMS = ['name', 'locale', 'zoneinfo'] as const;

profilePages.get('/account/profile', requireSession, async (c) => {
  const { deps } = c.var;
  const { profile, attributes } = await ownProfile(deps, c.var.session);
  const clientId = c.req.query('client_id')?.slice(0, 200);
  const needed = clientId ? (await attributesMissingFor(deps, c.var.session.sub, clientId)).map((a) => a.id) : [];
  const values: ProfileValues = {
    ...profile,
    ...Object.fromEntries(Object.entries(attributes).map(([k, v]) => [`attr_${k}`, typeof v === 'boolean' ? v : String(v)])),
  };
  const returnTo = c.req.query('return_to') ? safeReturnTo(c.req.query('return_to')) : undefined;
  return c.html(
    <ProfilePage csrf={c.var.csrfToken} values={values} attributes={deps.config.attributes} needed={needed} returnTo={returnTo} />,
  );
});

profilePages.post('/account/profile', requireSession, async (c) => {
  const { deps } = c.var;
  const form = await c.req.parseBody();
  const str = (k: string) => (typeof form[k] === 'string' ? (form[k] as string).trim() : '');
  const values: ProfileValues = Object.fromEntries(CLAIMS.map((k) => [k, str(k)]));
  // Every field of the form is sent: an empty one clears its value; a number is read as one; an unticked box is false.
  const attributes = attributesFromForm(deps.config.attributes, str);
  for (const a of deps.config.attributes) {
    const raw = str(`attr_${a.id}`);
    values[`attr_${a.id}`] = a.type === 'boolean' ? raw === 'true' : raw;
  }
  const returnTo = form.return_to ? safeReturnTo(str('return_to')) : undefined;
  const render = (error: string, field: string, status: 400) =>
    c.html(
      <ProfilePage
        csrf={c.var.csrfToken}
        values={values}
        attributes={deps.config.attributes}
        needed={[]}
        returnTo={returnTo}
        error={error}
        field={field}
      />,
      status,
    );
  const input = {
    ...Object.fromEntries(CLAIMS.map((k) => [k, values[k] === '' ? null : values[k]])),
    ...(deps.config.attributes.length ? { attributes } : {}),
  };
  try {
    const parsed = ownProfileInput(deps.config).safeParse(input);
    if (!parsed.success) throw invalidInput(parsed.error);
    await updateOwnProfile(deps, c.var.session, parsed.data, requestMeta(c));
    return c.redirect(returnTo ?? '/auth/account?profile=saved', 303);
  } catch (e) {
    if (!(e instanceof GatehouseError && e.status < 500 && e.extra.field)) throw e;
    return render(e.message, e.extra.field, e.status as 400);
  }
});
