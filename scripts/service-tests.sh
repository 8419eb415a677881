#!/usr/bin/env bash
# Runs the server's test suite against PostgreSQL: every test makes a database of its own
# on the server that SOTTO_TEST_POSTGRES names (default: the local one, as user postgres)
# and drops it afterwards.
#
# Without a PostgreSQL server this pass is skipped with a notice, so that the README's test
# command needs none; SOTTO_REQUIRE_SERVICES=1 (as CI sets) makes a missing server an error.
# To get one on Debian: apt-get install postgresql, then allow the test user to connect
# (e.g. `trust` for 127.0.0.1 in pg_hba.conf) and pg_ctlcluster <version> main start.
set -euo pipefail
cd "$(dirname "$0")/.."

url=${SOTTO_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}
# host and port from postgres://[user[:pass]@]host[:port]/db
hostport=${url#*://}
hostport=${hostport##*@}
hostport=${hostport%%/*}
host=${hostport%%:*}
port=5432
[[ $hostport == *:* ]] && port=${hostport##*:}

if ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  msg="PostgreSQL is not answering on $host:$port ($url)"
  if [ "${SOTTO_REQUIRE_SERVICES:-0}" = 1 ]; then
    echo "postgres-tests: $msg, and SOTTO_REQUIRE_SERVICES=1 requires it." >&2
    exit 1
  fi
  echo "postgres-tests: SKIPPED: $msg. Start it (see scripts/postgres-tests.sh) to test the PostgreSQL backend."
  exit 0
fi

SOTTO_TEST_POSTGRES=$url cargo test -p sotto-server --tests
