import type { Context } from 'hono';
import { requestIdOf } from './request-meta';

/**
 * Runs `task` after the response is sent (waitUntil) and logs its failure without details; awaits
 * it where the runtime offers no execution context.
 */
export function deferTo(c: Context, event: string): (task: Promise<void>) => void {
  return (task) => {
    const logged = task.catch((e: unknown) => {
      console.error(JSON.stringify({ event, requestId: requestIdOf(c), error: e instanceof Error ? e.name : 'unknown' }));
    });
    try {
      c.executionCtx.waitUntil(logged);
    } catch {
      // app.fetch(request, env) without a context (tests): the promise still runs to completion.
    }
  };
}
