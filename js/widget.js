// Widget mode of the classic build: a script tag that carries data-external-auth-code (or
// data-widget) mounts a chat panel by itself, with no other code on the page:
//   <script defer src="https://sotto.example.com/pkg/sotto.global.js"
//           data-external-auth-code="JWT" data-thread="@support"></script>
// data-server sets the server URL (default: where the script came from), data-org the org,
// data-thread an expression whose thread opens once signed in (the same one at every page
// load: `threadEnsure`). Without a code on the tag,
// a `?externalAuthCode=` in the page's address signs in.
(function mountWidget(script) {
  if (!script || !('externalAuthCode' in script.dataset || 'widget' in script.dataset)) return;
  const data = script.dataset;
  const mount = () => {
    const el = document.createElement('div');
    el.id = 'sotto-widget';
    el.setAttribute('role', 'complementary');
    el.setAttribute('aria-label', 'Chat');
    el.style.cssText = 'position:fixed;right:16px;bottom:16px;width:360px;height:520px;'
      + 'max-width:calc(100vw - 32px);max-height:calc(100vh - 32px);z-index:2147483000;'
      + 'box-shadow:0 8px 32px rgba(0,0,0,.18);border-radius:8px';
    document.body.appendChild(el);
    const auth = data.externalAuthCode ? { externalAuthCode: data.externalAuthCode } : undefined;
    const client = new Client(el, auth, {
      url: data.server || undefined,
      org: data.org || undefined,
      showNav: data.showNav !== 'false',
      onLoaded: async (c) => {
        if (!data.thread) return;
        try {
          // The same conversation on every page load, not a new thread each time.
          await c.threadOpen(await c.threadEnsure(data.thread));
        } catch (err) {
          console.warn('sotto widget:', err.code, err.message);
        }
      },
    });
    window.sotto.widget = client;
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mount);
  else mount();
})(document.currentScript);
