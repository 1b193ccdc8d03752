#!/usr/bin/env bash
# The control plane's figures (issue 2's "must show"), measured against the
# release build of minik8s from outside, as a user meets them:
#   (a) `minik8s server --no-node` start until /readyz answers (median, fresh data dirs)
#   (b) durable Service create latency, one client: p50 / p99
#   (c) Service creates per second with 16 concurrent clients
#   (d) a Table LIST of 1,000 Services (median)
#   (e) resident memory of an idle server, and after the 1,000 Services
# No root needed. The load generator is benches/api_bench.rs.
#
# Usage: scripts/bench-api.sh [--starts N] [--creates N] [--clients N]
#                             [--parallel-creates N] [--lists N]
# CARGO_TARGET_DIR is honoured (default: target).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

echo "building minik8s (release)..." >&2
cargo build --release --bin minik8s
echo "building the load generator (release)..." >&2
cargo bench --bench api_bench --no-run

echo >&2
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), $(uname -sr)" >&2
cargo bench --bench api_bench -- --bin "$target/release/minik8s" "$@"
