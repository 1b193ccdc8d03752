#!/usr/bin/env bash
# DNS programming latency of the cluster DNS (crates/dns): Service created
# -> its name answers, and Service deleted -> NXDOMAIN, through a real API
# server (minik8s' apiserver and sled store, in-process on loopback) with
# the DNS server fed by its watches, as `minik8s server` wires them.
#
#   scripts/bench-dns-latency.sh            # no root needed
#
# Builds the release harness crates/dns/examples/dns_latency_bench.rs,
# which first creates $BACKGROUND Services (so each change lands in a big
# table), then creates and deletes $MEASURE Services one at a time, asking
# the DNS every 0.5 ms, and prints p50/p90/p99/max.
#
# Knobs (environment): BACKGROUND=10000 MEASURE=300.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BACKGROUND=${BACKGROUND:-10000}
MEASURE=${MEASURE:-300}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== building the release harness"
(cd "$ROOT" && cargo build --release -q -p dns --example dns_latency_bench)
BIN=$CARGO_TARGET_DIR/release/examples/dns_latency_bench

echo "== created / deleted -> DNS follows"
"$BIN" --background "$BACKGROUND" --measure "$MEASURE"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
