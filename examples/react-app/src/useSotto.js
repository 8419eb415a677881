import { useEffect, useState } from 'react';
import { Client } from 'sotto';

/**
 * A Sotto client without its UI for as long as the component is mounted: `null` until it
 * is signed in and connected. React's StrictMode mounts twice in development; the first
 * client is destroyed before the second starts, and the second takes the account over
 * (one tab at a time holds it), so the hook survives it.
 */
export function useSotto(getToken) {
  const [client, setClient] = useState(null);
  useEffect(() => {
    // Headless: the element only anchors the client; nothing is drawn in it.
    const anchor = document.createElement('div');
    const c = new Client(anchor, { tokenProvider: getToken }, {
      url: location.origin,
      ui: false,
      onLoaded: () => setClient(c),
    });
    // A second tab of the same person: this one is a view over it, and usable as well.
    c.addEventListener('tabwaiting', () => setClient(c));
    return () => {
      setClient(null);
      c.destroy();
    };
  }, [getToken]);
  return client;
}

/** Calls `load()` now and whenever one of the client's `events` fires; its latest result. */
export function useSottoValue(client, events, load, initial) {
  const [value, setValue] = useState(initial);
  useEffect(() => {
    if (!client) return undefined;
    let live = true;
    const refresh = () => load(client).then((v) => live && setValue(v), () => {});
    refresh();
    for (const e of events) client.addEventListener(e, refresh);
    return () => {
      live = false;
      for (const e of events) client.removeEventListener(e, refresh);
    };
  }, [client, load]);
  return value;
}
