// The demo page: stands in for a site whose backend mints a sign-in JWT for its user
// (here the demo-only /demo/jwt endpoint of a server started with --demo).
'use strict';

async function signIn(user) {
  document.getElementById('choose').hidden = true;
  const who = document.getElementById('who');
  who.hidden = false;
  who.textContent = 'Signing in as ' + user + '…';
  let auth;
  const options = { showNav: true, showHeader: true, onLoaded: () => { who.textContent = 'Signed in as ' + user + '.'; } };
  // ?locale=de shows the UI in German (any language tag: its dates, its direction).
  const locale = new URLSearchParams(location.search).get('locale');
  if (locale) options.locale = locale;
  if (user === 'visitor') {
    auth = { orgEphemeralToken: 'demo-visitor-token' };
    options.org = 'demo';
    options.ephemeralUserInfo = { name: 'Visitor' };
  } else {
    const res = await fetch('/demo/jwt', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user }),
    });
    if (!res.ok) {
      who.textContent = 'The demo server did not sign a token (is it running with --demo?).';
      return;
    }
    auth = { jwt: (await res.json()).jwt };
  }
  const client = new sotto.Client(document.getElementById('messenger'), auth, options);
  client.addEventListener('tabwaiting', () => {
    who.textContent = 'Signed in as ' + user + ' in another tab; this tab shows and sends through it.';
  });
  client.addEventListener('error', (e) => console.warn('sotto:', e.detail && e.detail.code, e.detail && e.detail.message));
  window.client = client; // for poking at the API from the console
}

for (const button of document.querySelectorAll('[data-user]')) {
  button.addEventListener('click', () => signIn(button.dataset.user));
}
// ?as=bob signs in straight away.
const as = new URLSearchParams(location.search).get('as');
if (as) signIn(as);
