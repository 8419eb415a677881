#!/usr/bin/env bash
# Sets everything up, builds the client and the server, and runs the demo: one server on
# localhost serving the demo site, with the demo users alice, bob and carol.
# Environment: SOTTO_LISTEN (default 127.0.0.1:8080), SOTTO_DATABASE (default demo.db).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
scripts/build.sh
cargo build --release -p sotto-server
export SOTTO_LISTEN="${SOTTO_LISTEN:-127.0.0.1:8080}"
export SOTTO_DATABASE="${SOTTO_DATABASE:-demo.db}"
exec target/release/sotto-server --demo --static-dir .
