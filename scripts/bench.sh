#!/usr/bin/env bash
# Runs every benchmark on the release builds and rewrites the results in BENCHMARKS.md:
# sizes (pkg/), cryptography natively (criterion) and in Chromium (wasm, beside WebCrypto
# and vodozemac), loading and message latency in Chromium against a real server, and the
# server under 1,000 / 5,000 / 10,000 devices on SQLite, and at 10,000 devices on one
# PostgreSQL node and on two nodes with NATS (when they run here). Takes about 20 minutes
# on 2 cores.
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

echo "== the server under load: one node on SQLite"
status=0
bench/target/load/sotto-load --server target/server/sotto-server --json "$out/load.json" || status=$?

# The same load on the engines a cluster runs on, when this machine has them.
pg=${SOTTO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
nats=${SOTTO_TEST_NATS:-nats://127.0.0.1:4222}
rm -f "$out/load-postgres.json" "$out/load-cluster.json"
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  echo "== one node on PostgreSQL"
  bench/target/load/sotto-load --server target/server/sotto-server --levels 10000 \
    --postgres "$pg" --json "$out/load-postgres.json" || status=$?
  if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    echo "== two nodes on PostgreSQL + NATS"
    bench/target/load/sotto-load --server target/server/sotto-server --levels 10000 \
      --postgres "$pg" --nodes 2 --bus "$nats" --json "$out/load-cluster.json" || status=$?
  else
    echo "bench: NATS is not running on 127.0.0.1:4222; two nodes are not measured"
  fi
else
  echo "bench: PostgreSQL is not running on 127.0.0.1:5432; PostgreSQL and two nodes are not measured"
fi

node bench/report.mjs "$out"
exit "$status"
