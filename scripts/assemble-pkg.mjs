// Assembles pkg/ from wasm-bindgen's output and js/: the ES module build (sotto.js), the
// classic script-tag build (sotto.global.js, which defines the global `sotto`), the UI's
// languages (locales/*.json), the TypeScript types and package.json. Called by scripts/build.sh.
import { readFileSync, writeFileSync, copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [webDir, classicDir, wasmPath] = process.argv.slice(2);
const pkg = join(root, 'pkg');
mkdirSync(pkg, { recursive: true });

const version = /^version\s*=\s*"([^"]+)"/m.exec(readFileSync(join(root, 'Cargo.toml'), 'utf8'))[1];
// i18n.js (the UI's languages), previews.js (images in the thread) and tabs.js (the
// account's tabs) come first: client.js uses them.
const body = ['js/i18n.js', 'js/previews.js', 'js/tabs.js', 'js/client.js'].map((f) => readFileSync(join(root, f), 'utf8')).join('\n');
const header = `/* Sotto ${version} — end-to-end encrypted messaging for any page. Apache-2.0. */\n`;

copyFileSync(wasmPath, join(pkg, 'sotto_wasm_bg.wasm'));
copyFileSync(join(webDir, 'sotto_wasm.js'), join(pkg, 'sotto_wasm.js'));

// The UI's languages (js/i18n.js): one JSON file each, fetched only by a page that asks for
// it. Each build names every file with a literal URL, which bundlers follow and copy.
const languages = readdirSync(join(root, 'js/locales')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort();
mkdirSync(join(pkg, 'locales'), { recursive: true });
for (const l of languages) {
  JSON.parse(readFileSync(join(root, `js/locales/${l}.json`), 'utf8'));
  copyFileSync(join(root, `js/locales/${l}.json`), join(pkg, `locales/${l}.json`));
}
const locales = (url) => `const __locales = { ${languages.map((l) => `${l}: ${url(l)}`).join(', ')} };`;

// ES module: for bundlers and <script type="module">.
writeFileSync(
  join(pkg, 'sotto.js'),
  `${header}import __init, * as __wasm from './sotto_wasm.js';
const __base = import.meta.url;
let __loading;
const __load = () => (__loading ??= __init({ module_or_path: new URL('./sotto_wasm_bg.wasm', import.meta.url) }));
${locales((l) => `new URL('./locales/${l}.json', import.meta.url)`)}
${body}
export const version = ${JSON.stringify(version)};
export { Client, SottoChat };
export default { Client, SottoChat, version };
`,
);

// Classic script: <script src=".../sotto.global.js"> defines window.sotto.
const classicGlue = readFileSync(join(classicDir, 'sotto_wasm.js'), 'utf8');
const widget = readFileSync(join(root, 'js/widget.js'), 'utf8');
writeFileSync(
  join(pkg, 'sotto.global.js'),
  `${header}(function () {
'use strict';
const __base = (document.currentScript && document.currentScript.src) || location.href;
${classicGlue}
const __wasm = wasm_bindgen;
let __loading;
const __load = () => (__loading ??= wasm_bindgen({ module_or_path: new URL('sotto_wasm_bg.wasm', __base) }));
${locales((l) => `new URL('locales/${l}.json', __base)`)}
${body}
window.sotto = { Client, SottoChat, version: ${JSON.stringify(version)} };
${widget}
})();
`,
);

copyFileSync(join(root, 'js/sotto.d.ts'), join(pkg, 'sotto.d.ts'));
writeFileSync(
  join(pkg, 'package.json'),
  JSON.stringify(
    {
      name: 'sotto',
      version,
      description: 'End-to-end encrypted messaging that mounts in one of your page\'s elements (Rust + WebAssembly).',
      license: 'Apache-2.0',
      type: 'module',
      main: './sotto.js',
      module: './sotto.js',
      types: './sotto.d.ts',
      exports: {
        '.': { types: './sotto.d.ts', import: './sotto.js', default: './sotto.js' },
        './global': './sotto.global.js',
        './sotto_wasm_bg.wasm': './sotto_wasm_bg.wasm',
        './locales/*': './locales/*',
        './package.json': './package.json',
      },
      files: ['sotto.js', 'sotto_wasm.js', 'sotto_wasm_bg.wasm', 'sotto.global.js', 'sotto.d.ts', 'locales'],
      // Loading the module defines <sotto-chat>: a bare `import 'sotto'` must stay.
      sideEffects: ['./sotto.js', './sotto.global.js'],
    },
    null,
    2,
  ) + '\n',
);
console.log(`pkg/ assembled (sotto ${version})`);
