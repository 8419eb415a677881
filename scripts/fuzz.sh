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
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked
fi

# libFuzzer's coverage instrumentation and `cargo fuzz` itself want a nightly compiler. The
# stable one in use here is told to accept the flags (the instrumentation is stable LLVM
# work; only the flags are gated), so no second toolchain is needed.
export RUSTC_BOOTSTRAP=1

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
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
