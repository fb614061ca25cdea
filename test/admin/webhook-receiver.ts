import { Webhook } from 'standardwebhooks';
import { vi } from 'vitest';

/**
 * A webhook receiver at the fetch boundary, as an integration would run one: every POST to
 * https://<name>.hooks.test/… is verified with the standardwebhooks library (Webhook.verify, the
 * receiver's own secrets), recorded, and answered as the test scripts it. `install()` also puts it
 * in front of the isolate's global fetch, where the real queue consumer's deliveries go (the Workers
 * tests run the worker in their own isolate); other URLs pass through.
 */

export interface Received {
  url: string;
  id: string;
  timestamp: string;
  signature: string;
  headers: Record<string, string>;
  body: string;
  /** What Webhook.verify returned with the receiver's secrets, or null when no secret verified it. */
  verified: { type: string; version: number; timestamp: string; data: Record<string, unknown> } | null;
  /** The secrets (by index in `secrets`) that verified it. */
  verifiedWith: number[];
  at: number;
}

type Answer = number | ((signal: AbortSignal | undefined) => Response | Promise<Response>);

export function receiver(name: string) {
  const origin = `https://${name}.hooks.test`;
  const received: Received[] = [];
  let secrets: string[] = [];
  let answers: Answer[] = [];
  let otherwise: Answer = 204;

  const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    const body = await request.text();
    const headers = Object.fromEntries(request.headers);
    const verifiedWith = secrets.flatMap((s, i) => {
      try {
        new Webhook(s).verify(body, headers);
        return [i];
      } catch {
        return [];
      }
    });
    received.push({
      url: request.url,
      id: headers['webhook-id'] ?? '',
      timestamp: headers['webhook-timestamp'] ?? '',
      signature: headers['webhook-signature'] ?? '',
      headers,
      body,
      verified: verifiedWith.length ? (JSON.parse(body) as Received['verified']) : null,
      verifiedWith,
      at: Date.now(),
    });
    const answer = answers.shift() ?? otherwise;
    const res =
      typeof answer === 'number'
        ? new Response(answer === 204 ? null : `status ${answer}`, { status: answer })
        : await answer(init?.signal ?? undefined);
    // As the runtime's fetch does: a redirect is followed unless the caller said `redirect: 'manual'`.
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location && request.redirect !== 'manual')
      return globalThis.fetch(location, { method: request.method, headers: request.headers, body });
    return res;
  };

  return {
    origin,
    url: (path = '/hook') => `${origin}${path}`,
    received,
    fetch: fetcher as typeof fetch,
    /** The secrets this receiver verifies with (as an integration stores them). */
    trust(...s: string[]) {
      secrets = s;
    },
    /** The next answers, in order (a status, or a function of the request's abort signal); then `then`. */
    answer(next: Answer[], then: Answer = 204) {
      answers = [...next];
      otherwise = then;
    },
    /** Deliveries of one event (by webhook-id). */
    of: (id: string) => received.filter((r) => r.id === id),
    /** Routes the isolate's global fetch for this origin here, until the test ends. */
    install() {
      const real = globalThis.fetch;
      const spy = vi
        .spyOn(globalThis, 'fetch')
        .mockImplementation((input, init) =>
          new Request(input, init).url.startsWith(`${origin}/`) ? fetcher(input, init) : real(input, init),
        );
      return () => spy.mockRestore();
    },
  };
}

export type Receiver = ReturnType<typeof receiver>;

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, ms = 15_000, what = 'the condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
