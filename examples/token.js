// Stands in for a site's backend in the examples: the demo server (run with --demo) signs a
// sign-in JWT for a demo user. A real site signs it itself, with its own key.
async function demoToken(user, ttl) {
  const res = await fetch('/demo/jwt', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user, ttl }),
  });
  if (!res.ok) throw new Error('the demo server did not sign a token (is it running with --demo?)');
  return (await res.json()).jwt;
}
