// Widget mode of the classic build: a script tag that carries data-external-auth-code (or
// data-widget) puts a chat launcher in the page's corner, with no other code on the page:
//   <script defer src="https://sotto.example.com/pkg/sotto.global.js"
//           data-external-auth-code="JWT" data-thread="@support"></script>
// data-server sets the server URL (default: where the script came from), data-org the org,
// data-thread an expression whose thread opens once signed in (the same one at every page
// load: `threadEnsure`), data-brand the name in the panel's header, data-locale its language
// ("de"; English without it), data-position "right" (default) or "left", data-open="true" to
// start open on a first visit. Without a code on the tag, a `?externalAuthCode=` in the
// page's address signs in.
//
// The launcher is a round button with the unread count; it opens and minimises the panel
// (Escape in the panel minimises it too) and the page remembers which, per origin. On a
// phone-sized screen the panel takes the screen, under a strip that keeps the button.
(function mountWidget(script) {
  if (!script || !('externalAuthCode' in script.dataset || 'widget' in script.dataset)) return;
  const data = script.dataset;
  const side = data.position === 'left' ? 'left' : 'right';
  const remembered = 'sotto-widget-open';
  const mount = () => {
    // One launcher per page, whatever the number of tags.
    if (document.getElementById('sotto-launcher')) return;
    let locale;
    try {
      ({ locale } = readLanguageOptions({ locale: data.locale }));
    } catch (err) {
      console.warn('sotto widget: data-locale:', err.message);
    }
    // English until the language's words have come (the launcher's labels only).
    let words = makeTranslator(locale);
    const style = document.createElement('style');
    style.textContent = `
#sotto-launcher { position: fixed; ${side}: 16px; bottom: 16px; width: 56px; height: 56px; border-radius: 50%;
  border: 0; background: #3056d3; color: #fff; box-shadow: 0 4px 16px rgba(0,0,0,.25); cursor: pointer;
  z-index: 2147483001; display: flex; align-items: center; justify-content: center; padding: 0; }
#sotto-launcher:focus-visible { outline: 3px solid #9db1f5; outline-offset: 2px; }
#sotto-launcher svg { width: 26px; height: 26px; fill: currentColor; }
#sotto-launcher .sotto-badge { position: absolute; top: -2px; ${side === 'right' ? 'left' : 'right'}: -2px; min-width: 20px; height: 20px;
  padding: 0 5px; border-radius: 10px; background: #c62828; color: #fff; font: 600 12px/20px system-ui, sans-serif; }
#sotto-launcher .sotto-badge[hidden] { display: none; }
#sotto-widget { position: fixed; ${side}: 16px; bottom: 84px; width: 360px; height: 520px;
  max-width: calc(100vw - 32px); max-height: calc(100vh - 100px); z-index: 2147483000;
  box-shadow: 0 8px 32px rgba(0,0,0,.18); border-radius: 8px; }
#sotto-widget[hidden] { display: none; }
#sotto-launcher[aria-expanded="true"] .sotto-chat, #sotto-launcher[aria-expanded="false"] .sotto-close { display: none; }
@media (max-width: 480px) {
  #sotto-widget { inset: 48px 0 0 0; width: auto; height: auto; max-width: none; max-height: none; border-radius: 0;
    box-shadow: 0 0 0 100vmax rgba(20,24,33,.45); }
  #sotto-widget:not([hidden]) + #sotto-launcher { top: 4px; bottom: auto; width: 40px; height: 40px; }
}`;
    document.head.appendChild(style);
    const el = document.createElement('div');
    el.id = 'sotto-widget';
    el.setAttribute('role', 'complementary');
    el.setAttribute('aria-label', words.translate('Chat'));
    const launcher = document.createElement('button');
    launcher.id = 'sotto-launcher';
    launcher.type = 'button';
    launcher.setAttribute('aria-controls', 'sotto-widget');
    launcher.innerHTML = '<svg class="sotto-chat" viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z"/></svg>'
      + '<svg class="sotto-close" viewBox="0 0 24 24" aria-hidden="true"><path d="M6.4 5 12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z"/></svg>'
      + '<span class="sotto-badge" hidden></span>';
    const badge = launcher.querySelector('.sotto-badge');
    let unread = 0;
    let client = null;
    const show = (open, remember = true) => {
      open = Boolean(open);
      const opening = open && el.hidden;
      el.hidden = !open;
      // Shown again: what came into the open thread meanwhile is read now (not before).
      if (opening && client) client.threadOpen('').catch(() => {});
      launcher.setAttribute('aria-expanded', String(open));
      launcher.setAttribute('aria-label', words.translate(open ? 'Minimise the chat' : 'Open the chat')
        + (unread ? words.translate(` (${unread} unread)`) : ''));
      try {
        if (remember) localStorage.setItem(remembered, open ? '1' : '0');
      } catch {
        // Storage may be off; the panel then starts as data-open says.
      }
    };
    let stored = null;
    try {
      stored = localStorage.getItem(remembered);
    } catch {
      stored = null;
    }
    launcher.addEventListener('click', () => show(el.hidden));
    el.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !e.defaultPrevented) {
        show(false);
        launcher.focus();
      }
    });
    document.body.append(el, launcher);
    show(stored === null ? data.open === 'true' : stored === '1');
    loadTranslator({ locale }).then((loaded) => {
      words = loaded;
      el.setAttribute('aria-label', words.translate('Chat'));
      show(!el.hidden, false);
    });
    const auth = data.externalAuthCode ? { externalAuthCode: data.externalAuthCode } : undefined;
    client = new Client(el, auth, {
      url: data.server || undefined,
      org: data.org || undefined,
      brand: data.brand || undefined,
      locale,
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
    client.addEventListener('unreadchange', (e) => {
      unread = e.detail.total;
      badge.textContent = unread > 99 ? '99+' : String(unread);
      badge.hidden = unread === 0;
      show(!el.hidden, false);
    });
    window.sotto.widget = client;
    window.sotto.widgetOpen = (open) => show(open);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', mount);
  else mount();
})(document.currentScript);
