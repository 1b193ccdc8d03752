#!/usr/bin/env bash
# kube-proxy benchmarks (root): rule syncs at scale in a throw-away network
# namespace, then network programming latency and ClusterIP throughput on a
# live minik8s node. Figures are medians; the machine may be noisy.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
scripts/install-deps.sh >/dev/null
cargo build -q --release --bin minik8s
cargo build -q --release -p proxy --example sync_bench
cargo build -q --release --bench proxy_bench
bench=$(ls -t target/release/deps/proxy_bench-* | grep -v '\.d$' | head -1)
echo "== full and partial sync, 1,000 Services x 10 endpoints =="
target/release/examples/sync_bench 1000 10 5
echo "== live node =="
"$bench" target/release/minik8s 30
