import { router } from '../lib/router';
import { jwksResponse } from './jwks';

/** `/.well-known/jwks.json` (jwks.ts). */
export const jwksRoutes = router('problem');

jwksRoutes.get('/jwks.json', (c) => jwksResponse(c.var.deps));
