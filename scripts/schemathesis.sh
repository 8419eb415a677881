#!/usr/bin/env bash
# A bounded schemathesis pass (property-based requests generated from /v1/openapi.json)
# against a real sotto-server on loopback: nothing it sends may get a 5xx, or an answer
# that the document does not describe (status, content type, body schema).
# Public routes run with a signed-in user's session; admin routes with an operator API key.
# Usage: scripts/schemathesis.sh [examples per operation, default 15]
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-15}
command -v schemathesis >/dev/null || { echo "schemathesis is missing: run scripts/setup.sh" >&2; exit 1; }
cargo build -q -p sotto-server
dir=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
# Generous limits: the fuzzer signs in and sends far more than a person would.
cat > "$dir/sotto.toml" <<TOML
auth_rate_per_minute = 100000
session_rate_per_minute = 100000
TOML
SOTTO_LOG=error target/debug/sotto-server --demo --config "$dir/sotto.toml" --database "$dir/sotto.db" \
  --listen 127.0.0.1:0 --metrics-listen off > "$dir/out" 2> "$dir/err" &
server_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$dir/out" && break; sleep 0.1; done
base=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$dir/out" | head -1)
[ -n "$base" ] || { cat "$dir/err" >&2; exit 1; }
api_key=$(target/debug/sotto-server --database "$dir/sotto.db" admin --json api-keys create --scope admin | sed -n 's/.*"key": "\([^"]*\)".*/\1/p')
jwt=$(curl -fsS -X POST "$base/demo/jwt" -H 'content-type: application/json' -d '{"user":"alice"}' | sed -n 's/.*"jwt":"\([^"]*\)".*/\1/p')
session=$(curl -fsS -X POST "$base/v1/auth/jwt" -H 'content-type: application/json' -d "{\"jwt\":\"$jwt\"}" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$api_key" ] && [ -n "$session" ] || { echo "could not make the API key or session" >&2; exit 1; }
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
common=(--checks "$checks" --max-examples "$examples" --seed 7 --workers 2 --request-timeout 10 --suppress-health-check all)
echo "== schemathesis: public API, as a signed-in user ($examples examples per operation)"
# Sign-out would end the session the rest runs with; the socket is no HTTP resource.
schemathesis run "$base/v1/openapi.json" "${common[@]}" -H "Authorization: Bearer $session" \
  --exclude-path-regex '^/v1/admin/' --exclude-path /v1/auth/logout --exclude-path /v1/ws
echo "== schemathesis: admin API, as an operator"
schemathesis run "$base/v1/openapi.json" "${common[@]}" -H "Authorization: Bearer $api_key" \
  --include-path-regex '^/v1/admin/'
