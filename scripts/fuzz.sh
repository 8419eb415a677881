#!/usr/bin/env bash
# Fuzzes every parser that takes bytes from the network or from a file (fuzz/fuzz_targets/)
# with cargo-fuzz (libFuzzer), starting from the committed seed corpus in fuzz/corpus/.
#   scripts/fuzz.sh            10 seconds per target (what scripts/test.sh runs)
#   scripts/fuzz.sh 600        a longer run: ten minutes per target
#   scripts/fuzz.sh 60 jwt     one target
# A crash, a panic or an input slower than 10 s fails the run; libFuzzer saves the input
# under fuzz/artifacts/<target>/ to replay with `cargo fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
# cargo-fuzz comes from scripts/setup.sh. Without a sanitizer (`--sanitizer none`) it
# needs no nightly compiler: libFuzzer's coverage instrumentation uses stable flags.
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz is missing; run scripts/setup.sh" >&2; exit 1; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  list=$(cargo fuzz list --fuzz-dir fuzz)
  mapfile -t targets <<<"$list"
fi
if [ ${#targets[@]} -eq 0 ] || [ -z "${targets[0]}" ]; then
  echo "fuzz: no targets found in fuzz/" >&2
  exit 1
fi
cargo fuzz build --fuzz-dir fuzz --sanitizer none
log=$(mktemp)
for t in "${targets[@]}"; do
  echo "== fuzz: $t for ${seconds}s"
  # New inputs go to a scratch corpus; the committed seeds are only read.
  scratch=$(mktemp -d)
  if ! cargo fuzz run --fuzz-dir fuzz --sanitizer none "$t" "$scratch" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $t failed; the input is under fuzz/artifacts/$t/" >&2
    exit 1
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)|^#[0-9]+ +DONE' "$log" || true
  rm -rf "$scratch"
done
rm -f "$log"
