#!/usr/bin/env bash
# Runs the server's tests that need the services a site with several nodes uses:
#   - every server test again on PostgreSQL (each test makes a database of its own on the
#     server that SOTTO_TEST_POSTGRES names, default the local one as user postgres, and
#     drops it), the copy of a SQLite site to PostgreSQL, and TLS to PostgreSQL;
#   - the cluster tests, two nodes with NATS between them (SOTTO_TEST_NATS, default the
#     local one), on PostgreSQL when it answers;
#   - the S3 blob-store tests, against moto's S3 server, which this script starts (setup.sh
#     installs it from PyPI).
#
# A service that is missing is skipped with a notice, so that the README's test command
# needs none; SOTTO_REQUIRE_SERVICES=1 (as CI sets) makes it an error.
# To get them on Debian: apt-get install postgresql nats-server; allow the test user to
# connect to PostgreSQL (e.g. `trust` for 127.0.0.1 in pg_hba.conf); pg_ctlcluster
# <version> main start; nats-server -a 127.0.0.1 -p 4222 &.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_url=${SOTTO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
nats_url=${SOTTO_TEST_NATS:-nats://127.0.0.1:4222}

# Whether host:port of a URL (scheme://[user[:pass]@]host[:port][/…]) takes a connection.
answers() {
  local hostport=${1#*://}
  hostport=${hostport##*@}
  hostport=${hostport%%/*}
  local host=${hostport%%:*} port=$2
  [[ $hostport == *:* ]] && port=${hostport##*:}
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

missing() {
  if [ "${SOTTO_REQUIRE_SERVICES:-0}" = 1 ]; then
    echo "service-tests: $1 is missing ($2), and SOTTO_REQUIRE_SERVICES=1 requires it." >&2
    exit 1
  fi
  echo "service-tests: SKIPPED: $1 is missing ($2): $3 (see scripts/service-tests.sh)."
}

db_env=()
# Listening is not enough: a stock PostgreSQL may refuse the test user.
pg_takes_us() {
  answers "$pg_url" 5432 || return 1
  ! command -v psql >/dev/null || psql "$pg_url" -Atc 'SELECT 1' >/dev/null 2>&1
}
if pg_takes_us; then
  echo "service-tests: every server test on PostgreSQL"
  db_env=(SOTTO_TEST_POSTGRES="$pg_url")
  env "${db_env[@]}" cargo test -p sotto-server --tests
  echo "service-tests: a SQLite site copied to PostgreSQL (copy-database)"
  env "${db_env[@]}" cargo test -p sotto-server --test copy -- --ignored
  echo "service-tests: PostgreSQL over TLS (sslmode, sslrootcert), through a TLS proxy"
  env "${db_env[@]}" cargo test -p sotto-server --test postgres_tls -- --ignored
else
  missing PostgreSQL "$pg_url, or it refuses this user" "the server's tests do not run on PostgreSQL"
fi

if answers "$nats_url" 4222; then
  echo "service-tests: two nodes with NATS between them"
  env "${db_env[@]}" SOTTO_TEST_NATS="$nats_url" cargo test -p sotto-server --test cluster -- --ignored
else
  missing NATS "$nats_url" "the cluster tests do not run"
fi

if command -v moto_server >/dev/null; then
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
  moto=$!
  trap 'kill $moto 2>/dev/null || true' EXIT
  for _ in $(seq 50); do answers "http://127.0.0.1:$port" "$port" && break; sleep 0.2; done
  echo "service-tests: attachments on an S3-compatible store (moto on port $port)"
  env "${db_env[@]}" SOTTO_TEST_S3="http://127.0.0.1:$port" cargo test -p sotto-server --test s3 -- --ignored
else
  missing "moto's S3 server" "moto_server not installed" "the S3 blob-store tests do not run"
fi
