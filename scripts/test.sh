#!/usr/bin/env bash
# The test command of README.md: unit tests, integration tests (root: they
# create network namespaces and iptables rules) and the chapter walkthrough.
# The last line says how many tests ran.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh needs root (the integration tests create network namespaces); run: sudo scripts/test.sh" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
echo "== building"
cargo build --workspace --all-targets || exit 1
echo "== unit and integration tests"
cargo test --workspace --no-fail-fast 2>&1 | tee "$log" || status=1
echo "== the chapter, step by step"
if MINIK8S_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/minik8s" scripts/chapter-05.sh; then
  chapter="chapter walkthrough passed"
else
  chapter="chapter walkthrough FAILED"; status=1
fi
passed=$(grep -o '[0-9]\+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -o '[0-9]\+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo "minik8s tests: $passed passed, $failed failed; $chapter"
exit $status
