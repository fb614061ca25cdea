import type { FC } from 'hono/jsx';
import type { FormState } from '../ui/components';
import { Alert, BackToAccount, Field, Form, Layout } from '../ui/layout';
import { en } from '../ui/messages';

type Values = { name?: string | undefined; locale?: string | undefined; zoneinfo?: string | undefined };

/** The person's name, preferred language and time zone; an empty field clears it. */
export const ProfilePage: FC<FormState & { values: Values }> = (s) => {
  const error = (field: string) => (s.field === field ? s.error : undefined);
  return (
    <Layout title={en.profile.title}>
      <Alert message={s.field && ['name', 'locale', 'zoneinfo'].includes(s.field) ? undefined : s.error} />
      <Form action="/auth/account/profile" csrf={s.csrf}>
        <Field
          name="name"
          label={en.profile.name}
          autocomplete="name"
          maxlength={200}
          value={s.values.name ?? ''}
          error={error('name')}
          required={false}
        />
        <Field
          name="locale"
          label={en.profile.locale}
          hint={en.profile.localeHint}
          autocomplete="language"
          maxlength={35}
          value={s.values.locale ?? ''}
          error={error('locale')}
          required={false}
        />
        <Field
          name="zoneinfo"
          label={en.profile.zoneinfo}
          hint={en.profile.zoneinfoHint}
          autocomplete="off"
          maxlength={64}
          value={s.values.zoneinfo ?? ''}
          error={error('zoneinfo')}
          required={false}
        />
        <button class="primary" type="submit">
          {en.profile.save}
        </button>
      </Form>
      <BackToAccount />
    </Layout>
  );
};
