import type { Mail } from './mailer';

// Plain, short, link-first messages. The links carry single-use tokens; nothing else secret goes in mail.

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const htmlOf = (lines: string[], link?: { href: string; label: string }) =>
  `<p>${lines.map(escapeHtml).join('</p><p>')}</p>${link ? `<p><a href="${escapeHtml(link.href)}">${escapeHtml(link.label)}</a></p>` : ''}`;

export function verifyEmailMail(to: string, link: string, minutes: number): Mail {
  const lines = [
    'Confirm your email address to finish creating your account.',
    `This link works once and expires in ${minutes} minutes. If you did not sign up, ignore this message.`,
  ];
  return {
    to,
    subject: 'Confirm your email address',
    text: `${lines.join('\n\n')}\n\n${link}\n`,
    html: htmlOf(lines, { href: link, label: 'Confirm email address' }),
  };
}

export function resetPasswordMail(to: string, link: string, minutes: number): Mail {
  const lines = [
    'Someone asked to reset the password for this account. If it was you, choose a new password here.',
    `This link works once and expires in ${minutes} minutes. Resetting signs out every other session. If it was not you, ignore this message.`,
  ];
  return {
    to,
    subject: 'Reset your password',
    text: `${lines.join('\n\n')}\n\n${link}\n`,
    html: htmlOf(lines, { href: link, label: 'Choose a new password' }),
  };
}

/** An account an operator made for the person: a link to choose its password (the reset machinery, longer-lived). */
export function invitationMail(to: string, link: string, hours: number): Mail {
  const lines = [
    'An account was created for you with this email address. Choose a password to start using it.',
    `This link works once and expires in ${hours} hours. If you did not expect this, ignore this message.`,
  ];
  return {
    to,
    subject: 'Your new account: choose a password',
    text: `${lines.join('\n\n')}\n\n${link}\n`,
    html: htmlOf(lines, { href: link, label: 'Choose a password' }),
  };
}

/** An operator set or changed the account's address and wants it confirmed. */
export function confirmAddressMail(to: string, link: string, minutes: number): Mail {
  const lines = [
    'This email address was set for your account. Confirm that it is yours.',
    `This link works once and expires in ${minutes} minutes. If you do not have an account with us, ignore this message.`,
  ];
  return {
    to,
    subject: 'Confirm your email address',
    text: `${lines.join('\n\n')}\n\n${link}\n`,
    html: htmlOf(lines, { href: link, label: 'Confirm email address' }),
  };
}

/** Sent instead of a verification link when the address already has an account (no enumeration). */
export function alreadyRegisteredMail(to: string, signInLink: string, resetLink: string): Mail {
  const lines = [
    'Someone tried to create an account with this email address, but you already have one.',
    `Sign in at ${signInLink}, or reset your password at ${resetLink}. If it was not you, ignore this message.`,
  ];
  return {
    to,
    subject: 'You already have an account',
    text: `${lines.join('\n\n')}\n`,
    html: htmlOf(lines, { href: signInLink, label: 'Sign in' }),
  };
}

/** Sent after a sign-in from a device or network this account has not used before. */
export function newSignInMail(to: string, d: { when: Date; device: string; place: string; accountLink: string }): Mail {
  const lines = [
    `Your account was just signed in to from a new ${d.place ? 'device or place' : 'device'}.`,
    `When: ${d.when.toUTCString()}. Device: ${d.device}.${d.place ? ` Approximate place: ${d.place}.` : ''}`,
    'If this was you, there is nothing to do. If not, open your account, sign out that session and change your password.',
  ];
  return {
    to,
    subject: 'New sign-in to your account',
    text: `${lines.join('\n\n')}\n\n${d.accountLink}\n`,
    html: htmlOf(lines, { href: d.accountLink, label: 'Review your sessions' }),
  };
}

/** A sign-in link and the same sign-in as a code, for the browser that asked for it. */
export function emailSignInMail(to: string, d: { link: string; code: string; minutes: number; device: string }): Mail {
  const lines = [
    `Someone asked to sign in to your account from ${d.device}. If it was you, open the link below, or type this code: ${d.code.slice(0, 4)} ${d.code.slice(4)}`,
    `The link and the code work once, for ${d.minutes} minutes. If it was not you, ignore this message: nobody can sign in without them.`,
  ];
  return {
    to,
    subject: `Your sign-in code: ${d.code.slice(0, 4)} ${d.code.slice(4)}`,
    text: `${lines.join('\n\n')}\n\n${d.link}\n`,
    html: htmlOf(lines, { href: d.link, label: 'Sign in' }),
  };
}

/** A new way to sign in was added to the account: an account at an upstream identity provider. */
export function identityLinkedMail(to: string, d: { provider: string; account: string; accountLink: string }): Mail {
  const lines = [
    `Your ${d.provider} account (${d.account}) can now sign you in to your account here.`,
    'If this was you, there is nothing to do. If not, open your account, unlink it, sign out the sessions you do not know and change your password.',
  ];
  return {
    to,
    subject: `${d.provider} was linked to your account`,
    text: `${lines.join('\n\n')}\n\n${d.accountLink}\n`,
    html: htmlOf(lines, { href: d.accountLink, label: 'Review your account' }),
  };
}

/**
 * A sign-up through an upstream that may not vouch for this address. Says which upstream account
 * asked, so the owner of the mailbox can tell a stranger's attempt from their own.
 */
export function upstreamSignUpMail(to: string, d: { provider: string; account: string; link: string; minutes: number }): Mail {
  const lines = [
    `Someone is signing up with this address through ${d.provider} (the ${d.provider} account ${d.account}). Confirm your email address to finish creating the account.`,
    `Open the link in the browser where you started: only there will ${d.provider} sign you in to it. It works once and expires in ${d.minutes} minutes. If this was not you, ignore this message.`,
  ];
  return {
    to,
    subject: 'Confirm your email address',
    text: `${lines.join('\n\n')}\n\n${d.link}\n`,
    html: htmlOf(lines, { href: d.link, label: 'Confirm email address' }),
  };
}

/** An upstream account with this address asks to be linked to the account: sign in to it, then confirm. */
export function identityLinkRequestMail(to: string, d: { provider: string; account: string; link: string; minutes: number }): Mail {
  const lines = [
    `Someone wants to sign in to your account with ${d.provider} (the ${d.provider} account ${d.account}).`,
    `If it was you: open this link in the browser where you started within ${d.minutes} minutes, sign in the way you usually do, and confirm. If it was not you, ignore this message: nothing changes unless you confirm.`,
  ];
  return {
    to,
    subject: `Link ${d.provider} to your account?`,
    text: `${lines.join('\n\n')}\n\n${d.link}\n`,
    html: htmlOf(lines, { href: d.link, label: `Link ${d.provider}` }),
  };
}

/** An upstream account was unlinked: it no longer signs in here. */
export function identityUnlinkedMail(to: string, d: { provider: string; account: string; accountLink: string }): Mail {
  const lines = [
    `Your ${d.provider} account (${d.account}) was unlinked: it no longer signs you in here.`,
    'If this was not you, open your account, sign out the sessions you do not know and change your password.',
  ];
  return {
    to,
    subject: `${d.provider} was unlinked from your account`,
    text: `${lines.join('\n\n')}\n\n${d.accountLink}\n`,
    html: htmlOf(lines, { href: d.accountLink, label: 'Review your account' }),
  };
}

/** The account's password was changed (or a first one set) from a signed-in session. */
export function passwordChangedMail(to: string, d: { first: boolean; when: Date; accountLink: string }): Mail {
  const lines = [
    d.first ? 'A password was set for your account: it can now sign in with it too.' : 'The password for your account was changed.',
    `When: ${d.when.toUTCString()}. Every other session was signed out.`,
    'If this was you, there is nothing to do. If not, reset your password now and review your account.',
  ];
  return {
    to,
    subject: d.first ? 'A password was set for your account' : 'Your password was changed',
    text: `${lines.join('\n\n')}\n\n${d.accountLink}\n`,
    html: htmlOf(lines, { href: d.accountLink, label: 'Review your account' }),
  };
}

export function accountDeletedMail(to: string, d: { when: Date }): Mail {
  const lines = [
    'Your account was deleted, as you asked, with everything we held about you.',
    `When: ${d.when.toUTCString()}. Every session and app's access ended.`,
    'If this was not you, reply to this message at once.',
  ];
  return { to, subject: 'Your account was deleted', text: `${lines.join('\n\n')}\n`, html: htmlOf(lines) };
}

export function deletionScheduledMail(to: string, d: { due: Date; signInLink: string }): Mail {
  const lines = [
    `Your account will be deleted on ${d.due.toUTCString()}, as you asked. Every session was signed out.`,
    'Changed your mind? Sign in before then and the deletion is cancelled.',
  ];
  return {
    to,
    subject: 'Your account will be deleted',
    text: `${lines.join('\n\n')}\n\n${d.signInLink}\n`,
    html: htmlOf(lines, { href: d.signInLink, label: 'Sign in to keep your account' }),
  };
}

export function deletionCancelledMail(to: string, d: { accountLink: string }): Mail {
  const lines = ['You signed in, so your account will not be deleted.', 'If you still want it gone, ask again from your account page.'];
  return {
    to,
    subject: 'Your account will not be deleted',
    text: `${lines.join('\n\n')}\n\n${d.accountLink}\n`,
    html: htmlOf(lines, { href: d.accountLink, label: 'Your account' }),
  };
}

export function confirmNewAddressMail(to: string, d: { link: string; minutes: number }): Mail {
  const lines = [
    'Someone asked to use this address for their account. If it was you, confirm it from the browser you asked in.',
    `The link works once, for ${d.minutes} minutes. If it was not you, ignore this message.`,
  ];
  return {
    to,
    subject: 'Confirm your new address',
    text: `${lines.join('\n\n')}\n\n${d.link}\n`,
    html: htmlOf(lines, { href: d.link, label: 'Confirm this address' }),
  };
}

export function addressTakenMail(to: string, d: { accountLink: string }): Mail {
  const lines = [
    'Someone asked to move another account to this address, but this address already has an account (yours). Nothing changed.',
    'If it was you, sign in to that account with this address instead.',
  ];
  return {
    to,
    subject: 'This address already has an account',
    text: `${lines.join('\n\n')}\n\n${d.accountLink}\n`,
    html: htmlOf(lines, { href: d.accountLink, label: 'Sign in' }),
  };
}

export function addressChangedMail(to: string, d: { newAddress: string; undoLink: string; hours: number }): Mail {
  const lines = [
    `The address of your account was changed to ${d.newAddress}. Mail about your account now goes there.`,
    `If this was not you, put your address back (this also signs out every session): the link works once, for ${d.hours} hours.`,
  ];
  return {
    to,
    subject: 'The address of your account was changed',
    text: `${lines.join('\n\n')}\n\n${d.undoLink}\n`,
    html: htmlOf(lines, { href: d.undoLink, label: 'This was not me: undo' }),
  };
}
