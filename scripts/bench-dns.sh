#!/usr/bin/env bash
# Benchmark of the cluster DNS (crates/dns) against NSD serving the same
# records, both on loopback, measured with dnsperf.
#
#   sudo scripts/bench-dns.sh
#
# Builds the release harness (crates/dns/examples/dns_bench_server.rs),
# which loads $SERVICES synthetic Services into the table without an API
# server and writes the query list and the same records as a zone file.
# NSD (Debian package) serves that zone on another port. dnsperf asks both,
# alternating, $RUNS times each; the script prints the median QPS of each,
# their ratio, and the resident memory (VmRSS) of our server holding the
# Services, with the load average before and after (dnsperf shares the
# cores with both servers, so other load on the machine shows in the
# figures; the ratio of the same run matters most). Every process it
# starts is stopped on exit. DNS programming latency (Service created ->
# name answers): scripts/bench-dns-latency.sh.
#
# Knobs (environment): SERVICES=10000 RUNS=5 DURATION=10 CLIENTS=4
# OUTSTANDING=256 PEER_PORT=15353.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "bench-dns.sh installs packages (dnsperf, nsd): run it as root" >&2
  exit 1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERVICES=${SERVICES:-10000}
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
CLIENTS=${CLIENTS:-4}
OUTSTANDING=${OUTSTANDING:-256}
PEER_PORT=${PEER_PORT:-15353}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

WORK=$(mktemp -d /tmp/minik8s-bench-dns.XXXXXX)
PIDS=()
POLICY_RC_CREATED=

cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$POLICY_RC_CREATED" ]; then
    rm -f /usr/sbin/policy-rc.d
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Packages: installed without starting their services (nsd's own daemon
# would take port 53); only what is missing.
install_missing() {
  local missing=()
  command -v dnsperf >/dev/null 2>&1 || missing+=(dnsperf)
  command -v nsd >/dev/null 2>&1 || missing+=(nsd)
  command -v dig >/dev/null 2>&1 || missing+=(dnsutils)
  [ ${#missing[@]} -eq 0 ] && return
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
install_missing

echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== building the release harness"
(cd "$ROOT" && cargo build --release -q -p dns --example dns_bench_server)
BIN=$CARGO_TARGET_DIR/release/examples/dns_bench_server

echo "== starting the cluster DNS with $SERVICES Services"
"$BIN" --services "$SERVICES" --listen 127.0.0.1:0 \
  --queries-out "$WORK/queries.txt" --zone-out "$WORK/cluster.local.zone" \
  >"$WORK/ours.out" 2>"$WORK/ours.err" &
OURS_PID=$!
PIDS+=("$OURS_PID")
for _ in $(seq 1 600); do
  grep -q '^listening ' "$WORK/ours.out" 2>/dev/null && break
  kill -0 "$OURS_PID" 2>/dev/null || { cat "$WORK/ours.err" >&2; exit 1; }
  sleep 0.1
done
OURS_ADDR=$(sed -n 's/^listening //p' "$WORK/ours.out")
[ -n "$OURS_ADDR" ] || { echo "harness did not start" >&2; exit 1; }
OURS_PORT=${OURS_ADDR##*:}
cat "$WORK/ours.err"
sleep 1
RSS_IDLE_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$OURS_PID/status")

echo "== starting NSD on 127.0.0.1@$PEER_PORT with the same zone"
cat >"$WORK/nsd.conf" <<EOF
server:
    ip-address: 127.0.0.1@$PEER_PORT
    server-count: 2
    username: ""
    chroot: ""
    zonesdir: "$WORK"
    zonelistfile: "$WORK/zone.list"
    database: ""
    xfrdfile: "$WORK/xfrd.state"
    xfrdir: "$WORK"
    pidfile: "$WORK/nsd.pid"
    logfile: "$WORK/nsd.log"
    verbosity: 0
    hide-version: yes
remote-control:
    control-enable: no
zone:
    name: cluster.local
    zonefile: "$WORK/cluster.local.zone"
EOF
nsd-checkzone cluster.local "$WORK/cluster.local.zone" >/dev/null
nsd-checkconf "$WORK/nsd.conf"
nsd -d -c "$WORK/nsd.conf" >"$WORK/nsd.out" 2>&1 &
PIDS+=("$!")

# Both must give the same answers before their speed means anything.
NAME=$(awk 'NR==1 {print $1}' "$WORK/queries.txt")
for _ in $(seq 1 100); do
  dig +time=1 +tries=1 @127.0.0.1 -p "$PEER_PORT" "$NAME" A +short 2>/dev/null | grep -q . && break
  sleep 0.1
done
OURS_ANSWER=$(dig +time=2 +tries=1 @127.0.0.1 -p "$OURS_PORT" "$NAME" A +short)
PEER_ANSWER=$(dig +time=2 +tries=1 @127.0.0.1 -p "$PEER_PORT" "$NAME" A +short)
echo "   $NAME: ours=$OURS_ANSWER nsd=$PEER_ANSWER"
if [ -z "$OURS_ANSWER" ] || [ "$OURS_ANSWER" != "$PEER_ANSWER" ]; then
  echo "the two servers disagree; not benchmarking" >&2
  cat "$WORK/nsd.out" "$WORK/nsd.log" 2>/dev/null >&2 || true
  exit 1
fi
OURS_NX=$(dig +time=2 +tries=1 @127.0.0.1 -p "$OURS_PORT" "nope.$NAME" A | sed -n 's/.*status: \([A-Z]*\),.*/\1/p')
echo "   unknown name: $OURS_NX"

run_dnsperf() { # port label -> prints QPS
  local out
  out=$(dnsperf -s 127.0.0.1 -p "$1" -d "$WORK/queries.txt" -l "$DURATION" \
    -c "$CLIENTS" -T 1 -q "$OUTSTANDING" -t 2 2>&1)
  echo "$out" >"$WORK/dnsperf-$2-$(date +%s%N).log"
  local qps lost codes
  qps=$(echo "$out" | awk '/Queries per second:/ {print $4}')
  lost=$(echo "$out" | awk '/Queries lost:/ {print $3}')
  codes=$(echo "$out" | sed -n 's/^ *Response codes: *//p')
  echo "   $2: $qps qps (lost $lost; $codes)" >&2
  echo "$qps"
}

median() {
  sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'
}

echo "== dnsperf: $RUNS runs x ${DURATION}s each, $CLIENTS clients, $OUTSTANDING outstanding, A queries for $SERVICES names"
OURS_QPS=()
PEER_QPS=()
for i in $(seq 1 "$RUNS"); do
  OURS_QPS+=("$(run_dnsperf "$OURS_PORT" "minik8s-dns#$i")")
  PEER_QPS+=("$(run_dnsperf "$PEER_PORT" "nsd#$i")")
done
RSS_AFTER_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$OURS_PID/status")
HWM_KB=$(awk '/^VmHWM:/ {print $2}' "/proc/$OURS_PID/status")

OURS_MED=$(printf '%s\n' "${OURS_QPS[@]}" | median)
PEER_MED=$(printf '%s\n' "${PEER_QPS[@]}" | median)
RATIO=$(awk -v a="$OURS_MED" -v b="$PEER_MED" 'BEGIN {printf "%.2f", a / b}')

LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

echo
echo "== results ($(nproc) cores, load average after: $LOAD_AFTER)"
printf '  minik8s-dns median QPS : %s\n' "$OURS_MED"
printf '  nsd median QPS         : %s\n' "$PEER_MED"
printf '  ratio minik8s-dns/nsd  : %s\n' "$RATIO"
printf '  minik8s-dns RSS with %s Services: %s KiB idle, %s KiB after load (peak %s KiB)\n' \
  "$SERVICES" "$RSS_IDLE_KB" "$RSS_AFTER_KB" "$HWM_KB"
