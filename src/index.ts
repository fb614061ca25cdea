import { createApp } from './app';

export { UserSessions } from './sessions/user-sessions';

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<import('./config').Env>;
