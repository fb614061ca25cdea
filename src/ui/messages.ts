/** User-facing text for the hosted pages, by locale. One locale today; add more beside it. */
export const en = {
  product: 'Gatehouse',
  email: 'Email address',
  password: 'Password',
  newPassword: 'New password',
  passwordHint: (min: number) => `At least ${min} characters. Long passphrases are welcome; no other rules.`,
  signIn: { title: 'Sign in', submit: 'Sign in', noAccount: 'New here?', createAccount: 'Create an account', forgot: 'Forgot your password?' },
  signUp: {
    title: 'Create an account',
    submit: 'Create account',
    haveAccount: 'Already have an account?',
    sent: 'Check your email',
    sentBody: (email: string) =>
      `We sent a message to ${email}. Open the link in it within 30 minutes to finish creating your account.`,
  },
  forgot: {
    title: 'Reset your password',
    intro: 'Enter your email address and we will send you a link to choose a new password.',
    submit: 'Send reset link',
    sent: 'Check your email',
    sentBody: 'If that address has an account, a reset link is on its way. It works once, for 30 minutes.',
  },
  reset: {
    title: 'Choose a new password',
    submit: 'Change password',
    done: 'Password changed',
    doneBody: 'Your password was changed and every session was signed out. Sign in with the new password.',
  },
  verify: {
    title: 'Confirm your email address',
    intro: 'Press the button to confirm your email address.',
    submit: 'Confirm email address',
    done: 'Email address confirmed',
    doneBody: (email: string) => `${email} is confirmed. You can sign in now.`,
  },
  account: {
    title: 'Your account',
    verified: 'verified',
    unverified: 'not verified',
    sessions: 'Signed-in sessions',
    thisDevice: 'This session',
    started: 'Started',
    lastSeen: 'Last active',
    from: 'From',
    revoke: 'Sign out this session',
    signOut: 'Sign out',
    signOutEverywhere: 'Sign out everywhere',
  },
  errors: {
    csrf: 'This form expired or was not sent from this site. Reload the page and try again.',
    generic: 'Something went wrong on our side. Try again in a moment.',
    notFound: 'There is nothing here.',
  },
} as const;

export type Messages = typeof en;
