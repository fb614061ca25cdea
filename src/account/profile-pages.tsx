import type { FC } from 'hono/jsx';
import { AttributeControl, attributeField } from '../auth/attribute-control';
import type { ProfileAttribute } from '../identity/profile-attributes';
import type { FormState } from '../ui/components';
import { Alert, BackToAccount, Field, Form, Layout } from '../ui/layout';
import { en } from '../ui/messages';

/** What the form shows: each field as text (what was typed, on a re-render). */
export type ProfileValues = Record<string, string | boolean | undefined>;

/**
 * The person's name, preferred language, time zone and the attributes the operator declares; an
 * empty field clears it. Opened by an app's authorization request (`returnTo`), it marks what that
 * app needs and goes back there once saved.
 */
export const ProfilePage: FC<
  FormState & { values: ProfileValues; attributes: ProfileAttribute[]; needed: string[]; returnTo?: string | undefined }
> = (s) => {
  const error = (field: string) => (s.field === field ? s.error : undefined);
  const text = (k: string) => (typeof s.values[k] === 'string' ? (s.values[k] as string) : '');
  const onField = s.field && (['name', 'locale', 'zoneinfo'].includes(s.field) || s.field.startsWith('attributes.'));
  return (
    <Layout title={en.profile.title}>
      <Alert message={onField ? undefined : s.error} />
      {s.needed.length > 0 && <p role="status">{en.profile.neededIntro}</p>}
      <Form action="/auth/account/profile" csrf={s.csrf}>
        {s.returnTo && <input type="hidden" name="return_to" value={s.returnTo} />}
        <Field
          name="name"
          label={en.profile.name}
          autocomplete="name"
          maxlength={200}
          value={text('name')}
          error={error('name')}
          required={false}
        />
        <Field
          name="locale"
          label={en.profile.locale}
          hint={en.profile.localeHint}
          autocomplete="language"
          maxlength={35}
          value={text('locale')}
          error={error('locale')}
          required={false}
        />
        <Field
          name="zoneinfo"
          label={en.profile.zoneinfo}
          hint={en.profile.zoneinfoHint}
          autocomplete="off"
          maxlength={64}
          value={text('zoneinfo')}
          error={error('zoneinfo')}
          required={false}
        />
        {s.attributes.map((a) => (
          <AttributeControl
            a={a}
            value={s.values[attributeField(a.id)]}
            needed={s.needed.includes(a.id)}
            error={error(`attributes.${a.id}`)}
          />
        ))}
        <button class="primary" type="submit">
          {en.profile.save}
        </button>
      </Form>
      {!s.returnTo && <BackToAccount />}
    </Layout>
  );
};
