#!/usr/bin/env bash
# Sets everything up, then runs every test: formatting and lints, the native tests of
# sotto-core and sotto-server (real HTTP and WebSocket on loopback; the server's on SQLite,
# then again on PostgreSQL when one runs), a schemathesis pass over the HTTP API, a bounded
# fuzzing run,
# the client's browser tests in headless Chromium, and the end-to-end tests (the real server
# and Chromium pages).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

echo "== formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo clippy -p sotto --target wasm32-unknown-unknown --all-targets -- -D warnings

echo "== native tests (core, server)"
cargo test --workspace

echo "== the server's tests again on PostgreSQL, and the cluster tests with NATS"
scripts/service-tests.sh

echo "== the HTTP API against its OpenAPI document: schemathesis, 50 examples per operation"
scripts/schemathesis.sh 50

echo "== fuzzing: every parser of network and file input, 10 seconds each (scripts/fuzz.sh)"
scripts/fuzz.sh 10

echo "== client package, server binary, and the Vite and React example apps that install the package"
scripts/build.sh
cargo build -p sotto-server
(cd examples/vite-app && npm install --no-audit --no-fund && npm run build)
(cd examples/react-app && npm install --no-audit --no-fund && npm run build)

echo "== the wasm's size budget, the UI's translation tables, and its colours' contrast"
node --test tests/size.test.mjs tests/i18n.test.mjs tests/contrast.test.mjs

echo "== client tests in headless Chromium"
cargo test -p sotto --target wasm32-unknown-unknown --tests

echo "== end-to-end tests"
node --test tests/e2e/
