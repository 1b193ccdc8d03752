#!/usr/bin/env bash
# kube-proxy benchmarks (root):
# 1. rule syncs at scale in a throw-away network namespace: 1,000 Services
#    x 10 endpoints (~32,000 nat rules), a full sync into empty tables, a
#    full resync over them, and one endpoint change (partial sync), each
#    phase timed; with minik8s' netlink writer (what the proxy runs) and,
#    for comparison, the system's iptables-restore (nf_tables on Debian)
#    and iptables-legacy-restore;
# 2. on a live minik8s node: network programming latency (Pod Ready or
#    deleted -> DNAT rule in / out of the kernel, p50/p99) and requests/s
#    through a ClusterIP / straight to the Pod.
#
#   sudo scripts/bench-proxy.sh                 # 5 sync runs, 50 Pods
#   sudo RUNS=9 SAMPLES=100 scripts/bench-proxy.sh
#
# The machine may be shared: figures vary with its load, printed first.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "bench-proxy.sh creates network namespaces and iptables rules in them: run it as root" >&2
  exit 1
fi
scripts/install-deps.sh >/dev/null
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
target=${CARGO_TARGET_DIR:-target}
cargo build -q --release -p proxy --example sync_bench
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
echo "== syncs, 1,000 Services x 10 endpoints, minik8s netlink writer (as the proxy) =="
"$target/release/examples/sync_bench" 1000 10 "${RUNS:-5}"
echo "== the same with the system's iptables-restore ($(iptables-restore --version 2>&1)), for comparison =="
"$target/release/examples/sync_bench" 1000 10 "${RUNS:-5}" --restore
if command -v iptables-legacy-restore >/dev/null; then
  echo "== the same with iptables-legacy-restore, for comparison =="
  "$target/release/examples/sync_bench" 1000 10 "${RUNS:-5}" --legacy ||
    echo "(iptables-legacy-restore unavailable here: no ip_tables in the kernel?)"
fi
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== live node =="
cargo bench -q --bench proxy_bench -- "${SAMPLES:-50}"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
