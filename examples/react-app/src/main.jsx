import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { useSotto, useSottoValue } from './useSotto.js';

// A real app gets its token from its own backend; the demo server stands in for one.
const user = new URLSearchParams(location.search).get('user') || 'alice';
async function demoToken() {
  const res = await fetch('/demo/jwt', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  return (await res.json()).jwt;
}

const EVENTS = ['thread-message', 'thread-message-update', 'thread-message-readmark', 'unreadchange'];

function Thread({ client, thread }) {
  const load = useCallback((c) => c.threadMessages(thread.id), [thread.id]);
  const messages = useSottoValue(client, EVENTS, load, []);
  const [draft, setDraft] = useState('');
  // Shown: what arrives here is read (and its sender told) while the page is on screen.
  useEffect(() => {
    client.threadOpen(thread.id).catch(() => {});
  }, [client, thread.id]);
  const send = async (e) => {
    e.preventDefault();
    if (!draft.trim()) return;
    try {
      await client.threadSendMessage(thread.id, draft);
      setDraft('');
    } catch (err) {
      alert(`Not sent: ${err.message}`);
    }
  };
  return (
    <section className="thread" aria-label={thread.title}>
      <h2>{thread.title}</h2>
      <ol className="messages">
        {messages.map((m) => (
          <li key={m.id} className={m.outgoing ? 'out' : 'in'} data-status={m.status}>
            <b>{m.senderName}</b> {m.deleted ? <i>Message deleted</i> : m.text}
            {m.reactions?.map((r) => <span key={r.userId} className="reaction">{r.emoji}</span>)}
          </li>
        ))}
      </ol>
      <form onSubmit={send}>
        <input aria-label="Message" value={draft} onChange={(e) => setDraft(e.target.value)} />
        <button>Send</button>
      </form>
    </section>
  );
}

/** This browser has no key for the user: link it to a browser where they are signed in,
 * or make a new key (a new identity: their contacts are told it changed). */
function Setup({ setup }) {
  return (
    <p className="status">
      This browser is new for {user}.{' '}
      <button onClick={() => setup.importKeyFromRunningClient().catch(() => {})}>Link to my other browser</button>{' '}
      <button onClick={() => setup.generateKey().catch(() => {})}>Make a new key</button>
    </p>
  );
}

function App() {
  const { client, setup, error } = useSotto(demoToken);
  const [open, setOpen] = useState(null);
  // Read again when a thread is opened too: one just made has no message to announce it.
  const loadThreads = useCallback((c) => c.threadList(), [open]);
  const threads = useSottoValue(client, EVENTS, loadThreads, []);
  const start = () => client.threadEnsure('@bob', { title: 'React app' }).then(setOpen, () => {});
  if (!client && setup) return <Setup setup={setup} />;
  if (!client) return <p className="status">{error ? `Not connected: ${error.message}` : 'Connecting…'}</p>;
  const current = threads.find((t) => t.id === open);
  return (
    <main>
      <p className="status" data-connected="true">Signed in as {user}, with Sotto's API alone (no Sotto UI).</p>
      <nav aria-label="Threads">
        <button onClick={start}>Talk to Bob</button>
        <ul>
          {threads.map((t) => (
            <li key={t.id}>
              <button onClick={() => setOpen(t.id)} aria-current={t.id === open}>
                {t.title} {t.unread > 0 && <span className="unread">{t.unread}</span>}
              </button>
            </li>
          ))}
        </ul>
      </nav>
      {current && <Thread client={client} thread={current} />}
    </main>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
