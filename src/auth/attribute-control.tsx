import type { FC } from 'hono/jsx';
import type { ProfileAttribute } from '../identity/profile-attributes';
import { Field } from '../ui/layout';
import { en } from '../ui/messages';

/** The form field of a declared profile attribute (PROFILE_ATTRIBUTES): the profile page and the sign-up form. */
export const attributeField = (id: string) => `attr_${id}`;

/** One declared attribute as a form control of its type. */
export const AttributeControl: FC<{
  a: ProfileAttribute;
  value: string | boolean | undefined;
  needed: boolean;
  error?: string | undefined;
}> = ({ a, value, needed, error }) => {
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
