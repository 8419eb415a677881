// Images in the thread. The wasm draws an empty `img.image` in the button of each image
// attachment (PNG, JPEG, GIF or WebP, up to 5 MB); this shell fills it once it scrolls into
// view: the file comes decrypted through `attachmentGet`, its header must name an image of
// at most 40 megapixels (a small file can claim a picture that would fill the memory when
// decoded), and it is shown from a blob typed as the allowed image type, whatever the
// sender claimed. Each attachment is fetched once per page, three at a time, however often
// the thread is drawn again.
//
// Files picked for sending are previewed the same way: the wasm puts each image's `blob:`
// URL in `data-src` of an `img` in the tray, and it is shown only if its header passes.

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const MOST_PIXELS = 40e6;
const AT_ONCE = 3;

/** The width and height an image file's header gives, or null if it is not one we draw. */
function imageSize(bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const ascii = (at, s) => [...s].every((c, i) => bytes[at + i] === c.charCodeAt(0));
  if (bytes.length >= 24 && ascii(1, 'PNG') && ascii(12, 'IHDR')) return [v.getUint32(16), v.getUint32(20)];
  if (bytes.length >= 10 && ascii(0, 'GIF8')) return [v.getUint16(6, true), v.getUint16(8, true)];
  if (bytes.length >= 32 && ascii(0, 'RIFF') && ascii(8, 'WEBP')) {
    if (ascii(12, 'VP8X')) return [1 + (v.getUint32(24, true) & 0xffffff), 1 + (v.getUint32(27, true) & 0xffffff)];
    if (ascii(12, 'VP8L')) {
      const b = v.getUint32(21, true);
      return [1 + (b & 0x3fff), 1 + ((b >> 14) & 0x3fff)];
    }
    if (ascii(12, 'VP8 ')) return [v.getUint16(26, true) & 0x3fff, v.getUint16(28, true) & 0x3fff];
    return null;
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    // JPEG: the frame header (SOF0-SOF15, but not DHT, JPG or DAC) holds the size.
    for (let at = 2; at + 9 < bytes.length;) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1];
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return [v.getUint16(at + 7), v.getUint16(at + 5)];
      }
      at += 2 + v.getUint16(at + 2);
    }
  }
  return null;
}

/** Fills the previews drawn in `root` from `client`'s attachments; returns what stops it. */
function showPreviews(root, client) {
  const shown = new Map(); // "messageId/index" → Promise of a blob URL (or null)
  const waiting = [];
  let running = 0;
  const next = () => {
    while (running < AT_ONCE && waiting.length) {
      const job = waiting.shift();
      running += 1;
      job().finally(() => {
        running -= 1;
        next();
      });
    }
  };
  const load = (id, index) => new Promise((resolve) => {
    waiting.push(async () => {
      try {
        const file = await client.attachmentGet(id, index);
        const type = IMAGE_TYPES.find((t) => t === file.type);
        const size = imageSize(new Uint8Array(await file.slice(0, 65536).arrayBuffer()));
        if (!type || file.size > 5e6 || !size || !(size[0] * size[1] <= MOST_PIXELS)) return resolve(null);
        resolve(URL.createObjectURL(new Blob([file], { type })));
      } catch {
        resolve(null);
      }
    });
    next();
  });
  const fill = (img) => {
    const button = img.closest('[data-attachment]');
    if (!button) return;
    const key = `${button.dataset.messageId}/${button.dataset.attachment}`;
    if (!shown.has(key)) shown.set(key, load(button.dataset.messageId, Number(button.dataset.attachment)));
    // Not an image we draw after all: the name alone, as for any file.
    shown.get(key).then((url) => (url ? (img.src = url) : img.remove()));
  };
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (!e.isIntersecting) continue;
      seen.unobserve(e.target);
      fill(e.target);
    }
  }, { rootMargin: '200px' });
  // A file picked for sending: its own bytes, so no queue; the same header check, once
  // per file however often the tray is drawn. Only the wasm's `blob:` URLs are read.
  const checked = new Map(); // blob URL → Promise of whether it may be drawn
  const passes = async (url) => {
    try {
      const file = await (await fetch(url)).blob();
      const size = imageSize(new Uint8Array(await file.slice(0, 65536).arrayBuffer()));
      return Boolean(size && size[0] * size[1] <= MOST_PIXELS);
    } catch {
      return false; // taken out of the tray meanwhile: its URL is gone
    }
  };
  const thumb = async (img) => {
    const url = img.dataset.src;
    if (!url.startsWith('blob:')) return img.remove();
    if (!checked.has(url)) checked.set(url, passes(url));
    if (await checked.get(url)) img.src = url;
    else img.remove();
  };
  const watch = (node) => {
    if (node.nodeType !== 1) return;
    for (const img of [node, ...node.querySelectorAll('img')]) {
      if (img.matches('img.image')) seen.observe(img);
      else if (img.matches('img[data-src]')) thumb(img);
    }
  };
  const added = new MutationObserver((records) => {
    for (const r of records) r.addedNodes.forEach(watch);
  });
  added.observe(root, { subtree: true, childList: true });
  return () => {
    added.disconnect();
    seen.disconnect();
    for (const url of shown.values()) url.then((u) => u && URL.revokeObjectURL(u));
  };
}
