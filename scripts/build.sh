#!/usr/bin/env bash
# Builds pkg/: the release wasm (size-optimised, then wasm-opt), its ES-module and
# classic script-tag JavaScript, types and package.json. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --target wasm32-unknown-unknown -p sotto
out=target/wasm-bindgen
rm -rf "$out" pkg
wasm-bindgen target/wasm32-unknown-unknown/release/sotto.wasm --target web --out-dir "$out/web" --out-name sotto_wasm --no-typescript
wasm-bindgen target/wasm32-unknown-unknown/release/sotto.wasm --target no-modules --out-dir "$out/classic" --out-name sotto_wasm --no-typescript
# Both glue files load one and the same wasm; check that before shipping a single copy.
cmp -s "$out/web/sotto_wasm_bg.wasm" "$out/classic/sotto_wasm_bg.wasm" || {
  echo "build: the web and classic wasm differ; cannot share one file" >&2
  exit 1
}
# -Os --converge compresses better than -Oz here. --low-memory-unused lets wasm-opt fold
# constant offsets into loads and stores, which differs only for an address that wraps
# around below 1 KiB: the bottom of the 1 MiB stack, reached only by an overflow.
node_modules/.bin/wasm-opt -Os -ocimfs 14 --converge --low-memory-unused \
  --strip-debug --strip-producers --strip-target-features \
  --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
  --enable-mutable-globals --enable-reference-types --enable-multivalue \
  "$out/web/sotto_wasm_bg.wasm" -o "$out/sotto_wasm_bg.opt.wasm"
node scripts/assemble-pkg.mjs "$out/web" "$out/classic" "$out/sotto_wasm_bg.opt.wasm"
for f in pkg/sotto_wasm_bg.wasm pkg/sotto_wasm.js pkg/sotto.js pkg/sotto.global.js; do
  # gzip as tests/size.test.mjs measures it (Node's zlib, level 9), not GNU gzip (~2 KB less).
  gz=$(node -e "console.log(require('zlib').gzipSync(require('fs').readFileSync(process.argv[1]), { level: 9 }).length)" "$f")
  printf '%-26s %8d bytes, %7d gzip\n' "$f" "$(wc -c < "$f")" "$gz"
done
