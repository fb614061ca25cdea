import type { FC } from 'hono/jsx';
import type { ProfileAttribute } from '../identity/profile-attributes';
import type { FormState } from '../ui/components';
import { Alert, BackToAccount, Field, Form, Layout } from '../ui/layout';
import { en } from '../ui/messages';

/** What the form shows: each field as text (what was typed, on a re-render). */
export type ProfileValues = Record<string, string | boolean | undefined>;

const attributeField = (id: string) => `attr_${id}`;

/** One declared attribute as a form control of its type. */
const AttributeControl: FC<{ a: ProfileAttribute; value: string | boolean | undefined; needed: boolean; error?: string | undefined }> = ({
  a,
  value,
  needed,
  error,
}) => {
  const name = attributeField(a.id);
  const label = needed ? `${a.title} (${en.profile.needed})` : a.title;
  if (a.type === 'boolean')
    return (
      <p>
        <label>
          <input type="checkbox" name={name} value="true" checked={value === true || value === 'true'} /> {label}
        </label>
      </p>
    );
  if (a.type === 'enum')
    return (
      <p>
        <label for={name}>{label}</label>
        <select id={name} name={name} required={needed}>
          <option value="">—</option>
          {a.values!.map((v) => (
            <option value={v} selected={value === v}>
              {v}
            </option>
          ))}
        </select>
        {error && <span role="alert">{error}</span>}
      </p>
    );
  return (
    <Field
      name={name}
      label={label}
      type={a.type === 'number' ? 'number' : 'text'}
      autocomplete="off"
      {...(a.type === 'string' ? { maxlength: a.maxLength } : {})}
      value={value === undefined ? '' : String(value)}
      error={error}
      required={needed}
    />
  );
};

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
