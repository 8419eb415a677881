#!/usr/bin/env bash
# Starts a two-node Sotto cluster on this machine, for anyone to try: two sotto-server
# processes on one PostgreSQL database with NATS between them, and a round-robin TCP
# balancer in front (scripts/balancer.mjs), serving the demo. Open the URL it prints in
# two browser windows; kill one node (its PID is printed) and the clients carry on
# through the other.
#
# Needs PostgreSQL and NATS running locally (see scripts/service-tests.sh for how to get
# them). Environment: SOTTO_CLUSTER_DATABASE (default
# postgres://postgres@127.0.0.1:5432/sotto_cluster, created if missing), SOTTO_BUS
# (default nats://127.0.0.1:4222), SOTTO_LISTEN (the balancer; default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."

database=${SOTTO_CLUSTER_DATABASE:-postgres://postgres@127.0.0.1:5432/sotto_cluster}
bus=${SOTTO_BUS:-nats://127.0.0.1:4222}
listen=${SOTTO_LISTEN:-127.0.0.1:8080}

scripts/setup.sh
scripts/build.sh
cargo build --release -p sotto-server

# The database must exist; create it through the server's maintenance database.
admin=${database%/*}/postgres
name=${database##*/}
if ! psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
  psql "$admin" -qc "CREATE DATABASE $name"
fi

export SOTTO_DEMO_SECRET=${SOTTO_DEMO_SECRET:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
for port in 8081 8082; do
  target/release/sotto-server --demo --static-dir . --listen "127.0.0.1:$port" \
    --database "$database" --bus "$bus" &
  pids+=($!)
  echo "node on 127.0.0.1:$port: pid $!"
done
node scripts/balancer.mjs "$listen" 127.0.0.1:8081 127.0.0.1:8082 &
pids+=($!)
sleep 1
echo "Cluster ready: open http://$listen/ in two browser windows and sign in as two different users."
wait
