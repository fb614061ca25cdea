/**
 * The cross-device waiting script (bundled to /auth/assets/handoff.js). The page's #handoff element
 * names the handoff kind, this device's role (`wait`: the device that will be signed in; `own`: the
 * original device of a continue handoff) and where to go next. It listens on a WebSocket for the
 * moment the state changes and falls back to polling every two seconds if the socket fails.
 */
interface Message {
  state: 'pending' | 'approved' | 'consumed' | 'denied' | 'expired';
  joined?: boolean;
}

const el = document.getElementById('handoff');
const statusBox = document.querySelector<HTMLElement>('[data-handoff-status]');
const say = (text: string) => {
  if (statusBox) statusBox.textContent = text;
};

if (el) {
  const kind = el.dataset['kind']!;
  const role = el.dataset['role'] as 'wait' | 'own';
  const next = el.dataset['next'] ?? '/auth/account';
  let done = false;
  let poller: ReturnType<typeof setInterval> | undefined;

  const finish = () => {
    done = true;
    if (poller) clearInterval(poller);
  };

  const redeem = async () => {
    const res = await fetch('/auth/api/handoff/redeem', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ kind }),
    });
    const body = (await res.json().catch(() => ({}))) as { next?: string; detail?: string };
    if (!res.ok) return say(body.detail ?? 'Could not sign in. Start again.');
    say('Signed in.');
    window.location.assign(body.next ?? next);
  };

  const onMessage = (m: Message) => {
    if (done) return;
    const then = (step: () => void) => {
      finish();
      step();
    };
    if (m.state === 'denied') return then(() => say('The request was denied.'));
    if (m.state === 'expired') return then(() => say('The request expired. Start again.'));
    if (role === 'wait' && m.state === 'approved') return then(() => void redeem());
    if (role === 'own' && m.state === 'pending' && m.joined) return then(() => window.location.assign(next));
    if (role === 'own' && m.state === 'consumed') return then(() => say('The other device is signed in.'));
  };

  const poll = () => {
    if (poller) return;
    poller = setInterval(async () => {
      const res = await fetch(`/auth/api/handoff/status?kind=${kind}&role=${role}`, { credentials: 'same-origin' });
      if (res.ok) onMessage((await res.json()) as Message);
    }, 2000);
  };

  try {
    const ws = new WebSocket(
      `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/auth/handoff/socket?kind=${kind}&role=${role}`,
    );
    ws.addEventListener('message', (e) => onMessage(JSON.parse(String(e.data)) as Message));
    ws.addEventListener('close', () => {
      if (!done) poll();
    });
    ws.addEventListener('error', poll);
  } catch {
    poll();
  }
  document.documentElement.dataset['handoffReady'] = 'true';
}
