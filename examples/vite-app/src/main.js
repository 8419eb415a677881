import { Client, version } from 'sotto';

// A real app gets its token from its own backend; the demo server stands in for one.
const user = new URLSearchParams(location.search).get('user') || 'alice';
const res = await fetch('/demo/jwt', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ user }),
});
const { jwt } = await res.json();

const client = new Client(document.getElementById('chat'), { jwt }, {
  url: location.origin,
  onLoaded: async (c) => {
    await c.threadOpen(await c.threadEnsure('@bob', { title: `Vite app (sotto ${version})` }));
  },
});
window.client = client;
