#!/usr/bin/env bash
# The chapter's cluster in one command, left running for you to explore:
#
#   sudo scripts/demo.sh          install, build, start, show the Services
#   sudo scripts/demo.sh stop     stop it cleanly (SIGTERM, node removed)
#
# On a fresh machine: installs the OS packages (scripts/install-deps.sh),
# builds the release binary (or uses $MINIK8S_BIN), starts `minik8s
# server` in the background with the cluster defaults (API
# 127.0.0.1:6443, NodeIP 192.168.49.2, LoadBalancer pool 172.18.255.0/24),
# applies the chapter's manifests (examples/: the Deployment, the web
# Service as NodePort 30080, the ExternalName and headless Services), then
# shows `get svc`, `get endpoints`, a curl by short name from a Pod and a
# NodePort curl from the host. It prints how to go on and how to stop.
#
# Where things live: $MINIK8S_DEMO_DIR (default /var/lib/minik8s-demo):
# data/ (objects, Pod logs), server.log, server.pid, bin/minik8s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib/ipv4.sh"
. "$ROOT/scripts/lib/transcript.sh"
. "$ROOT/scripts/lib/checks.sh"
. "$ROOT/scripts/lib/cluster.sh"
. "$ROOT/scripts/lib/podshell.sh"
. "$ROOT/scripts/lib/build.sh"

DEMO_DIR=${MINIK8S_DEMO_DIR:-/var/lib/minik8s-demo}
DATA_DIR=$DEMO_DIR/data
SERVER_LOG=$DEMO_DIR/server.log
PID_FILE=$DEMO_DIR/server.pid
API=127.0.0.1:6443
SELF=$ROOT/scripts/demo.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "demo.sh starts minik8s server, which creates network namespaces and iptables rules: run it as root (sudo $SELF ${1:-})" >&2
  exit 1
fi

# demo_pid: the running demo server's pid, if there is one (a stale pid
# file, or a pid now used by another program, does not count).
demo_pid() {
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "minik8s server --data-dir $DATA_DIR " || return 1
  echo "$pid"
}

stop_demo() {
  local pid
  if ! pid=$(demo_pid); then
    rm -f "$PID_FILE"
    echo "no minik8s demo server is running"
    return 0
  fi
  echo "stopping minik8s server (pid $pid) ..."
  kill -TERM "$pid"
  local i
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "minik8s server (pid $pid) did not stop within 30 s; see $SERVER_LOG; force it with: sudo kill -9 $pid" >&2
    return 1
  fi
  rm -f "$PID_FILE"
  local held
  held=$(defaults_in_use)
  if [ -n "$held" ]; then
    echo "minik8s stopped, but the node's network is still there:" >&2
    sed 's/^/  /' <<<"$held" >&2
    return 1
  fi
  echo "minik8s stopped; its node network is gone. Objects stay in $DATA_DIR (start again with sudo $SELF, or remove them with sudo rm -rf $DEMO_DIR)."
}

case ${1:-start} in
  stop)
    stop_demo
    exit $?
    ;;
  start) ;;
  *)
    echo "usage: sudo $SELF [start|stop]" >&2
    exit 2
    ;;
esac

if pid=$(demo_pid); then
  echo "a minik8s demo server already runs (pid $pid, log $SERVER_LOG); stop it first: sudo $SELF stop" >&2
  exit 1
fi
held=$(defaults_in_use)
if [ -n "$held" ]; then
  echo "another minik8s server holds the default node network; stop it first:" >&2
  sed 's/^/  /' <<<"$held" >&2
  exit 1
fi
if ss -ltnH "sport = :${API##*:}" 2>/dev/null | grep -q .; then
  echo "port ${API##*:} is taken (by: $(ss -ltnpH "sport = :${API##*:}" | grep -o 'users:.*' | head -1)); stop that program first" >&2
  exit 1
fi

"$ROOT/scripts/install-deps.sh"
ensure_minik8s
mkdir -p "$DEMO_DIR/bin"
# A copy, so a later build in the checkout does not change the running demo.
cp -f "$MINIK8S" "$DEMO_DIR/bin/minik8s.new"
mv -f "$DEMO_DIR/bin/minik8s.new" "$DEMO_DIR/bin/minik8s"
MINIK8S=$DEMO_DIR/bin/minik8s
export PATH="$DEMO_DIR/bin:$PATH"

# A failure before the end stops the half-started demo again.
STARTED=''
on_exit() {
  local rc=$?
  trap - EXIT
  if [ "$rc" -ne 0 ] && [ -n "$STARTED" ]; then
    echo "the demo did not come up; stopping it (log: $SERVER_LOG)" >&2
    stop_demo >&2 || true
  fi
  exit "$rc"
}
trap on_exit EXIT

STEP=demo
WORK=$DEMO_DIR
: >"$SERVER_LOG"
echo
note "starting minik8s server in the background (log: $SERVER_LOG)"
printf '%s$ minik8s server --data-dir %s >%s 2>&1 &%s\n' "$C_CMD" "$DATA_DIR" "$SERVER_LOG" "$C_OFF"
setsid nohup "$MINIK8S" server --data-dir "$DATA_DIR" --listen "$API" >>"$SERVER_LOG" 2>&1 </dev/null &
SERVER_PID=$!
echo "$SERVER_PID" >"$PID_FILE"
STARTED=1
export MINIK8S_SERVER=http://$API
for ((i = 0; i < 600; i++)); do
  grep -q 'listening on' "$SERVER_LOG" && break
  kill -0 "$SERVER_PID" 2>/dev/null || {
    echo "minik8s server exited:" >&2
    tail -5 "$SERVER_LOG" >&2
    exit 1
  }
  sleep 0.1
done
wait_until "the node to be Ready" 60 node_ready
wait_until "the cluster DNS" 60 kube_dns_ready
note "minik8s runs (pid $SERVER_PID); the chapter's manifests:"

cd "$ROOT"
shown "minik8s apply -f examples/web-deploy.yaml -f examples/web-svc-nodeport.yaml -f examples/db-externalname.yaml -f examples/web-headless.yaml"
expect_rc 0 "apply the chapter's manifests"

# The Service is ready when its 3 endpoints answer (after a restart of
# the demo, old Pod IPs linger for a moment) and kube-proxy has their rules.
web_ready() {
  run_quiet "minik8s get endpoints web"
  [[ $OUT =~ web[[:space:]]+([0-9.]+):80,([0-9.]+):80,([0-9.]+):80[[:space:]] ]] || return 1
  local ip
  for ip in "${BASH_REMATCH[@]:1}"; do
    curl -s -o /dev/null -m 1 "http://$ip/" || return 1
  done
  OUT=$(ip netns exec "$NODE_NETNS" iptables-save -t nat 2>/dev/null)
  [ "$(grep -c -- '--comment "default/web" -m tcp -j DNAT' <<<"$OUT")" -eq 3 ]
}
wait_until "the 3 web Pods behind the Service" 120 web_ready
shown "minik8s get pods -o wide"
shown "minik8s get svc"
shown "minik8s get endpoints"

note "a temporary Pod calls the Service by its short name:"
pod_session "curl -s http://web | head -1"
expect_text "curl http://web from a Pod" '<!DOCTYPE html>' "$(session_part 1)"
note "the NodePort from this host:"
shown "curl -s http://$NODE_IP:30080 | head -1"
expect_text "curl the NodePort from the host" '<!DOCTYPE html>'
STARTED=''

cat <<EOF

${C_OK}minik8s is running${C_OFF} (pid $SERVER_PID, API $MINIK8S_SERVER, log $SERVER_LOG).

Go on with the chapter in another shell:
  export PATH=$DEMO_DIR/bin:\$PATH
  minik8s get svc,endpoints,pods -o wide
  minik8s get endpointslices -l kubernetes.io/service-name=web
  minik8s run tmp --rm -it --image=curlimages/curl -- sh     # then: curl -s http://web | head -1; nslookup web; exit
  minik8s service web --url                                  # the NodePort URL: curl it from this host
  minik8s apply -f examples/web-svc-lb.yaml                  # a LoadBalancer address from 172.18.255.0/24
  minik8s logs <pod>                                         # nginx's access log
  sudo ip netns exec $NODE_NETNS iptables-save -t nat | grep default/web   # kube-proxy's rules

Stop it:
  sudo $SELF stop              (or: sudo kill $SERVER_PID)
EOF
