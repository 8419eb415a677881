#!/usr/bin/env bash
# Runs every benchmark on the release builds and rewrites the results in BENCHMARKS.md:
# sizes (pkg/), cryptography natively (criterion) and in Chromium (wasm, beside WebCrypto
# and vodozemac), loading and message latency in Chromium against a real server, and the
# server under 1,000 / 5,000 / 10,000 devices. Takes about 15 minutes on 2 cores.
# Nothing here passes or fails on timing; only lost messages make it exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
out=target/bench
mkdir -p "$out"

echo "== builds: the client package, the server (speed profile), the benchmark tools"
scripts/build.sh
cargo build --profile server -p sotto-server
(
  cd bench
  cargo build --profile load -p sotto-load
  cargo build --release --target wasm32-unknown-unknown -p sotto-bench-wasm
  wasm-bindgen target/wasm32-unknown-unknown/release/sotto_bench_wasm.wasm --target web \
    --out-dir target/bench-wasm --no-typescript
  # Optimised like the shipped client (scripts/build.sh).
  ../node_modules/.bin/wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
    target/bench-wasm/sotto_bench_wasm_bg.wasm -o target/bench-wasm/sotto_bench_wasm_bg.wasm
)

echo "== cryptography, native (criterion)"
(cd bench && cargo bench -p sotto-bench-crypto --bench crypto -- --warm-up-time 1 --measurement-time 3)

echo "== Chromium: cryptography in wasm, loading, latency"
node bench/browser.mjs --server target/server/sotto-server --load bench/target/load/sotto-load \
  --json "$out/browser.json"

echo "== the server under load"
status=0
bench/target/load/sotto-load --server target/server/sotto-server --json "$out/load.json" || status=$?

node bench/report.mjs "$out"
exit "$status"
