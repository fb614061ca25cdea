import { auditOperations } from './audit-operations';
import { configOperations } from './config-catalogue';
import { consentOperations } from './consent-operations';
import { keyOperations } from './keys-operations';
import type { Operation } from './operations';
import { userOperations } from './users-operations';
import { webhookOperations } from './webhooks-operations';

/** Where the admin API lives: under /auth (Gatehouse's own paths; everything else is the gateway's). */
export const ADMIN_BASE = '/auth/admin/v1';

/** Every operation of the admin API, in the order the document lists them. */
export const ADMIN_OPERATIONS: readonly Operation[] = [
  ...auditOperations,
  ...keyOperations,
  ...userOperations,
  ...consentOperations,
  ...configOperations,
  ...webhookOperations,
];
