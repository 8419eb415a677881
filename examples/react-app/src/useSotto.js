import { useEffect, useRef, useState } from 'react';
import { Client } from 'sotto';

/**
 * A Sotto client without its UI for as long as the component is mounted, and what the page
 * must answer: `{client, setup, error}`. `client` is null until signed in and connected (or
 * a view of another tab that holds the account); `setup` is set when this browser has no
 * key yet (call `setup.generateKey()` or `setup.importKeyFromRunningClient()`).
 *
 * React's StrictMode mounts twice in development: the first client is destroyed before the
 * second starts, and the second takes the account over (one tab at a time holds it). The
 * token function is read through a ref, so passing a new arrow at each render does not make
 * a new client.
 */
export function useSotto(getToken) {
  const token = useRef(getToken);
  token.current = getToken;
  const [state, setState] = useState({ client: null, setup: null, error: null });
  useEffect(() => {
    // Headless: the element only anchors the client; nothing is drawn in it.
    const anchor = document.createElement('div');
    const c = new Client(anchor, { tokenProvider: () => token.current() }, {
      url: location.origin,
      ui: false,
      onLoaded: () => setState({ client: c, setup: null, error: null }),
    });
    c.addEventListener('tabwaiting', () => setState({ client: c, setup: null, error: null }));
    c.addEventListener('provisioningrequired', () => setState((s) => ({ ...s, setup: c })));
    c.addEventListener('error', (e) => setState((s) => ({ ...s, error: e.detail })));
    return () => {
      setState({ client: null, setup: null, error: null });
      c.destroy();
    };
  }, []);
  return state;
}

/** Calls `load()` now and whenever one of the client's `events` fires; its latest result. */
export function useSottoValue(client, events, load, initial) {
  const [value, setValue] = useState(initial);
  useEffect(() => {
    if (!client) return undefined;
    let latest = 0;
    const refresh = () => {
      const turn = ++latest;
      // An older answer arriving after a newer one is dropped.
      load(client).then((v) => turn === latest && setValue(v), () => {});
    };
    refresh();
    for (const e of events) client.addEventListener(e, refresh);
    return () => {
      latest = -1;
      for (const e of events) client.removeEventListener(e, refresh);
    };
  }, [client, load]);
  return value;
}
