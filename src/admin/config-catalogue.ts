import { apiKeyOperations } from './api-key-operations';
import { clientOperations } from './clients-operations';
import { providerOperations } from './providers-operations';
import { resourceOperations } from './resources-operations';

/** The configuration operations: clients, APIs, upstream providers and API keys, in that order. */
export const configOperations = [...clientOperations, ...resourceOperations, ...providerOperations, ...apiKeyOperations];
