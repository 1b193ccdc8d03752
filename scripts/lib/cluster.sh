# One `minik8s server` owned by a script: started on a data dir of the
# script's own, stopped with SIGTERM, and afterwards proven gone: no
# process it started, no network namespace, link or route of its node
# left on the host. Needs ipv4.sh, transcript.sh.
#
# Globals: MINIK8S (the binary), WORK (the script's temp dir), DATA_DIR,
# SERVER_LOG, SERVER_PID, API_PORT, MINIK8S_SERVER (exported for the CLI).

# The cluster defaults of `minik8s server` (see `minik8s server --help`):
# node netns, host side of its veth, and the CIDRs routed into the node.
NODE_NETNS=minik8s-node
NODE_HOST_LINK=mk-node-h
NODE_IP=192.168.49.2
DEFAULT_CIDRS=(192.168.49.0/24 10.244.0.0/16 10.96.0.0/12 172.18.255.0/24)

SERVER_PID=''
API_PORT=0
WATCH_PID=''
# Set once a server of this script has set up the default node network:
# only then are the node netns, link and routes its own to check (and
# never another server's that held them first).
NODE_OURS=''

# defaults_in_use: prints what on this host already holds the default
# node netns, link or CIDRs (nothing when they are free).
defaults_in_use() {
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$NODE_NETNS"; then
    echo "network namespace $NODE_NETNS exists"
  fi
  if ip link show "$NODE_HOST_LINK" >/dev/null 2>&1; then
    echo "link $NODE_HOST_LINK exists"
  fi
  local dst line cidr
  while read -r dst line; do
    [ "$dst" == default ] && continue
    ipv4_is_address "${dst%/*}" || continue
    for cidr in "${DEFAULT_CIDRS[@]}"; do
      if cidr_overlaps "$dst" "$cidr"; then
        echo "route $dst $line overlaps $cidr"
        break
      fi
    done
  done < <(ip -4 route show table main)
}

# require_defaults_free SECONDS: waits up to SECONDS for the defaults to
# be free (another minik8s server with the default settings may be
# finishing), then gives up with what holds them.
require_defaults_free() {
  local deadline=$(($(now_us) + ${1:-0} * 1000000)) held
  while :; do
    held=$(defaults_in_use)
    [ -z "$held" ] && return 0
    (($(now_us) >= deadline)) && break
    sleep 1
  done
  local who
  who=$(ps -eo pid=,args= | awk '$2 ~ /minik8s/ && $3 == "server" && !/--pod-cidr/ && !/--no-node/ {print "    pid " $0}')
  fail "default network settings free" \
    "no other minik8s server using the default node netns and CIDRs (${DEFAULT_CIDRS[*]})" \
    "$held${who:+$'\n'"minik8s servers with the default CIDRs:"$'\n'"$who"}"$'\n'"stop that server (or wait for it: CHAPTER05_WAIT=<seconds>) and run again"
}

# server_start FLAG...: starts the server on DATA_DIR and API_PORT (0
# picks a free port the first time; a restart keeps the port), waits
# until the API answers and the node is Ready.
server_start() {
  local from
  from=$(stat -c %s "$SERVER_LOG" 2>/dev/null || echo 0)
  # Its own session: a Ctrl-C in the terminal reaches the script, whose
  # exit trap stops the server in order.
  setsid "$MINIK8S" server --data-dir "$DATA_DIR" --listen "127.0.0.1:$API_PORT" "$@" \
    >>"$SERVER_LOG" 2>&1 </dev/null &
  SERVER_PID=$!
  local url='' deadline=$(($(now_us) + 60000000))
  while [ -z "$url" ]; do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      wait "$SERVER_PID" 2>/dev/null || true
      SERVER_PID=''
      fail "server start" "minik8s server to start" "it exited; its log says:"$'\n'"$(tail -c +$((from + 1)) "$SERVER_LOG" | tail -15)"
    fi
    (($(now_us) < deadline)) || fail "server start" "the API to listen within 60 s" "$(tail -c +$((from + 1)) "$SERVER_LOG" | tail -15)"
    url=$(tail -c +$((from + 1)) "$SERVER_LOG" | grep -o 'listening on http://[0-9.:]*' | head -1 | sed 's/listening on //' || true)
    [ -n "$url" ] || sleep 0.05
  done
  # The server listens only once its node network is set up: from here on
  # the default node netns, link and routes are this script's.
  NODE_OURS=1
  API_PORT=${url##*:}
  export MINIK8S_SERVER=$url
  echo "minik8s API listening on $url"
  printf '%s$ export MINIK8S_SERVER=%s%s\n' "$C_CMD" "$url" "$C_OFF"
  wait_until "node Ready" 60 node_ready
  wait_until "kube-dns endpoints" 60 kube_dns_ready
  record_processes
}

node_ready() {
  run_quiet "minik8s get nodes --no-headers"
  [[ $OUT =~ (^|$'\n')[^[:space:]]+[[:space:]]+Ready[[:space:]] ]]
}

kube_dns_ready() {
  run_quiet "minik8s get endpoints kube-dns -n kube-system --no-headers"
  [ "$RC" -eq 0 ] && [[ $OUT != *'<none>'* ]] && [[ $OUT =~ $RE_IP ]]
}

# wait_until WHAT SECONDS FUNCTION: polls FUNCTION every 0.1 s.
wait_until() {
  local what=$1 limit=$2 start
  start=$(now_us)
  local deadline=$((start + limit * 1000000))
  shift 2
  until "$@"; do
    (($(now_us) < deadline)) || fail "waiting for $what" "it within $limit s" "not yet; last output:"$'\n'"$OUT"
    sleep 0.1
  done
  # TRACE=1 shows where the time goes.
  [ -z "${TRACE:-}" ] || note "waited $(fmt_secs $(($(now_us) - start))) s for $what"
}

# server_stop: SIGTERM, wait for the server to remove its node, and check
# it ended cleanly. Safe to call when no server runs.
server_stop() {
  [ -n "$SERVER_PID" ] || return 0
  record_processes
  local pid=$SERVER_PID rc=0 deadline=$(($(now_us) + 30000000))
  SERVER_PID=''
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && (($(now_us) < deadline)); do
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    echo "minik8s server (pid $pid) did not stop within 30 s of SIGTERM; killed" >>"$WORK/leftovers"
    return 0
  fi
  wait "$pid" 2>/dev/null || rc=$?
  [ -z "${TRACE:-}" ] || note "the server took $(fmt_secs $(($(now_us) - deadline + 30000000))) s to stop"
  [ "$rc" -eq 0 ] || echo "minik8s server (pid $pid) exited with status $rc after SIGTERM; log: $(tail -3 "$SERVER_LOG")" >>"$WORK/leftovers"
}

# record_processes: remembers every process below the server (Pod
# containers are its children), with its start time so a reused pid is
# not mistaken for a leftover.
record_processes() {
  [ -n "$SERVER_PID" ] || return 0
  ps -eo pid=,ppid= | awk -v root="$SERVER_PID" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      for (i = 1; i <= NR; i++) {
        p = pids[i]; q = p
        for (d = 0; d < 64 && q != "" && q != 0; d++) {
          if (q == root) { print p; break }
          q = parent[q]
        }
      }
    }' | while read -r pid; do
    local -a argv=()
    proc_start "$pid" || continue
    mapfile -d '' -t argv <"/proc/$pid/cmdline" 2>/dev/null || true
    echo "$pid $REPLY ${argv[*]:0:4}"
  done >>"$WORK/processes"
}

# Between steps: who runs below the server now (a container that outlived
# its Pod is still the server's child at this point).
on_step_done() {
  record_processes
}

# proc_start PID: REPLY is the process's start time in clock ticks since
# boot (field 22 of /proc/PID/stat; read without forking).
proc_start() {
  local stat
  local -a fields
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  read -r -a fields <<<"${stat##*) }"
  REPLY=${fields[19]}
}

# pod_watch_start: records the uid of every Pod this server runs (from a
# watch of the API), so their sandbox netns can be checked afterwards.
pod_watch_start() {
  curl -sN "$MINIK8S_SERVER/api/v1/pods?watch=true" >>"$WORK/pods.watch" 2>/dev/null </dev/null &
  WATCH_PID=$!
}

pod_watch_stop() {
  [ -n "$WATCH_PID" ] || return 0
  kill "$WATCH_PID" 2>/dev/null || true
  wait "$WATCH_PID" 2>/dev/null || true
  WATCH_PID=''
}

# The 8 hex digits that end a Pod's sandbox netns name.
recorded_pod_uid8s() {
  [ -f "$WORK/pods.watch" ] || return 0
  # Owner references' uids come along; they name no netns, so no harm.
  grep -o '"uid":"[0-9a-f-]*"' "$WORK/pods.watch" | cut -d'"' -f4 | tr -d '-' | cut -c1-8 | sort -u
}

# verify_nothing_left: lists, in $WORK/leftovers, whatever this script's
# servers left on the host, and removes it; returns 1 when there was any.
verify_nothing_left() {
  local line pid start cmd
  if [ -f "$WORK/processes" ]; then
    sort -u "$WORK/processes" | while read -r pid start cmd; do
      if proc_start "$pid" && [ "$REPLY" == "$start" ]; then
        echo "process $pid ($cmd) still runs; killed"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done >>"$WORK/leftovers"
  fi
  if [ -z "$NODE_OURS" ]; then
    # (An explicit status: a bare `return` in an exit trap returns the
    # status the trap was entered with.)
    if [ -s "$WORK/leftovers" ]; then return 1; else return 0; fi
  fi
  local netns uid8s
  uid8s=$(recorded_pod_uid8s)
  while read -r netns _; do
    [ -n "$netns" ] || continue
    if [ "$netns" == "$NODE_NETNS" ] || { [[ $netns == minik8s-* ]] && grep -qx "${netns##*-}" <<<"$uid8s"; }; then
      echo "network namespace $netns still exists; removed"
      ip netns delete "$netns" 2>/dev/null || true
    fi
  done < <(ip netns list 2>/dev/null) >>"$WORK/leftovers"
  if ip link show "$NODE_HOST_LINK" >/dev/null 2>&1; then
    echo "link $NODE_HOST_LINK still exists; removed" >>"$WORK/leftovers"
    ip link delete "$NODE_HOST_LINK" 2>/dev/null || true
  fi
  local dst rest
  while read -r dst rest; do
    if [[ " $rest " == *" via $NODE_IP "* ]] || [[ " $rest " == *" dev $NODE_HOST_LINK "* ]]; then
      echo "route $dst $rest still exists; removed"
      ip route del "$dst" 2>/dev/null || true
    fi
  done < <(ip -4 route show table main) >>"$WORK/leftovers"
  [ ! -s "$WORK/leftovers" ]
}
