#!/usr/bin/env bash
# Installs what building and testing Sotto needs on a fresh Debian machine with Rust and
# Node.js: the wasm target, wasm-bindgen-cli at the exact version in Cargo.lock, Chromium
# and ChromeDriver (browser tests), cargo-fuzz, moto's S3 server and schemathesis (PyPI), and the npm tools (binaryen's wasm-opt,
# playwright-core).
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v node >/dev/null || missing+=(nodejs npm)
# An end-to-end test ages envelopes in the server's SQLite file, as a month would.
command -v sqlite3 >/dev/null || missing+=(sqlite3)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} (apt)"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must match the library version exactly.
[ -f Cargo.lock ] || cargo generate-lockfile
wb_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if ! wasm-bindgen --version 2>/dev/null | grep -qF "$wb_version"; then
  echo "setup: installing wasm-bindgen-cli $wb_version (takes a few minutes)"
  # Not --locked: the registry lacks one crate of the CLI's own lockfile.
  cargo install wasm-bindgen-cli --version "$wb_version"
fi

# cargo-fuzz (scripts/fuzz.sh, which scripts/test.sh runs), at a known version.
if ! cargo fuzz --version 2>/dev/null | grep -qF "0.13.2"; then
  echo "setup: installing cargo-fuzz 0.13.2 (takes a minute)"
  cargo install cargo-fuzz --version 0.13.2 --locked
fi

# moto's S3-compatible server, for the S3 blob-store tests (scripts/service-tests.sh).
if ! command -v moto_server >/dev/null && command -v python3 >/dev/null; then
  echo "setup: installing moto[server] 5.2.1 (pip)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "moto[server]==5.2.1" \
    || echo "setup: moto could not be installed; the S3 blob-store tests will be skipped"
fi

# schemathesis, which fuzzes the HTTP API from its OpenAPI document (scripts/schemathesis.sh).
# (sed reads all of pip's output: grep -q would stop early and, under pipefail, fail it.)
if [ "$(python3 -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p')" != "4.32.5" ]; then
  echo "setup: installing schemathesis 4.32.5 (pip)"
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "schemathesis==4.32.5"
fi

if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
