#!/usr/bin/env bash
# Pod benchmarks on a live minik8s node (root): startup latency of single
# Pods (create -> Ready seen on a watch, p50/p99), a burst of Pods created
# at once, many Pods running at once with the memory each sandbox costs,
# kill -9 and a restart, and a teardown check that nothing is left.
#
#   sudo scripts/bench-pods.sh            # 60 single, 30 at once, 100 running
#   sudo SINGLE=100 BURST=30 MANY=100 scripts/bench-pods.sh
#
# The bench (benches/pod_bench.rs) starts its own `minik8s server` (release
# build) with node settings no other server uses, and stops it on exit.
# The machine may be shared: figures vary with its load.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-pods.sh creates network namespaces and Pods: run it as root" >&2
  exit 1
fi
cargo bench -q --bench pod_bench -- "${SINGLE:-60}" "${BURST:-30}" "${MANY:-100}"
