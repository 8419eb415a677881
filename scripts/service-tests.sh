#!/usr/bin/env bash
# Runs the server's test suite against the services a site with several nodes uses:
# every test on PostgreSQL (each makes a database of its own on the server that
# SOTTO_TEST_POSTGRES names, default the local one as user postgres, and drops it), and
# with NATS (SOTTO_TEST_NATS, default the local one) also the cluster tests, which run two
# nodes with the bus between them.
#
# A service that does not answer is skipped with a notice, so that the README's test
# command needs neither; SOTTO_REQUIRE_SERVICES=1 (as CI sets) makes it an error.
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
    echo "service-tests: $1 is not answering ($2), and SOTTO_REQUIRE_SERVICES=1 requires it." >&2
    exit 1
  fi
  echo "service-tests: SKIPPED: $1 is not answering ($2): $3 (see scripts/service-tests.sh to start it)."
}

if ! answers "$pg_url" 5432; then
  missing PostgreSQL "$pg_url" "the server's tests on PostgreSQL and the cluster tests do not run"
  exit 0
fi
if answers "$nats_url" 4222; then
  echo "service-tests: every server test on PostgreSQL, and the cluster tests with NATS"
  SOTTO_TEST_POSTGRES=$pg_url SOTTO_TEST_NATS=$nats_url cargo test -p sotto-server --tests -- --include-ignored
else
  missing NATS "$nats_url" "the cluster tests do not run"
  SOTTO_TEST_POSTGRES=$pg_url cargo test -p sotto-server --tests
fi
