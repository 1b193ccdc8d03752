#!/usr/bin/env bash
# The Service chapter, end to end, on this machine:
#
#   sudo scripts/chapter-05.sh
#
# Installs the OS packages minik8s needs (scripts/install-deps.sh), builds
# the release binary (or runs $MINIK8S_BIN), starts `minik8s server` on a
# fresh temporary data dir and runs every step of WALKTHROUGH.md in order:
# Chapter 4's Deployment, Endpoints and EndpointSlices, ClusterIP, the
# three curls from a temporary Pod, NodePort from the host, LoadBalancer
# without and with a provider, ExternalName, headless, kube-proxy's rules,
# DNS, cleanup and the three exercises. Each command is printed the way
# the book prints it (`$ minik8s get svc`, then its output) and its output
# is checked: fixed text exactly, generated values (IPs, ages, suffixes)
# by pattern. The first difference ends the run with
#   FAILED at step N (<what>): expected ..., got ...
# and a non-zero status. On any exit the server is stopped with SIGTERM,
# the host is checked for anything of this run left behind (processes,
# network namespaces, links, routes) and the temporary directory is
# removed.
#
# The server uses the cluster defaults (NodeIP 192.168.49.2, Pod CIDR
# 10.244.0.0/16, Service CIDR 10.96.0.0/12, LoadBalancer pool
# 172.18.255.0/24) and an API port of its own. Another minik8s server with
# the default settings must not be running; CHAPTER05_WAIT=<seconds> waits
# for it to go away instead of failing at once.
#
# Environment: MINIK8S_BIN (binary to run, skips the build),
# CARGO_TARGET_DIR (where the release build goes), CHAPTER05_WAIT,
# CMD_TIMEOUT (seconds one command may take, 90), TRACE=1 (print how long each wait took).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/lib/ipv4.sh"
. "$ROOT/scripts/lib/transcript.sh"
. "$ROOT/scripts/lib/checks.sh"
. "$ROOT/scripts/lib/cluster.sh"
. "$ROOT/scripts/lib/podshell.sh"
. "$ROOT/scripts/lib/build.sh"

T_START=$(now_us)
T_CHAPTER=''

if [ "$(id -u)" -ne 0 ]; then
  echo "chapter-05.sh runs minik8s server, which creates network namespaces and iptables rules: run it as root (sudo $0)" >&2
  exit 1
fi
"$ROOT/scripts/install-deps.sh"
ensure_minik8s

WORK=$(mktemp -d /tmp/minik8s-chapter05.XXXXXX)
DATA_DIR=$WORK/data
SERVER_LOG=$WORK/server.log
mkdir -p "$WORK/bin"
ln -s "$MINIK8S" "$WORK/bin/minik8s"
export PATH="$WORK/bin:$PATH"
: >"$WORK/leftovers"

on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  set +e
  step_done_if_passed "$rc"
  pod_watch_stop
  server_stop
  if ! verify_nothing_left; then
    printf '\n%sFAILED at cleanup (nothing left behind): expected no process, network namespace, link or route of this run, got:%s\n' "$C_BAD" "$C_OFF" >&2
    sed 's/^/    | /' "$WORK/leftovers" >&2
    rc=1
  fi
  if [ "$rc" -ne 0 ] && [ -s "$SERVER_LOG" ]; then
    printf '%s# last lines of the server log:%s\n' "$C_DIM" "$C_OFF" >&2
    tail -20 "$SERVER_LOG" | sed 's/\x1b\[[0-9;]*m//g; s/^/    /' >&2
  fi
  rm -rf "$WORK"
  local end
  end=$(now_us)
  if [ "$rc" -eq 0 ]; then
    printf '\n%schapter-05: PASSED, %d steps; the chapter took %s s (server start to stop), the whole script %s s%s\n' \
      "$C_OK" "$STEPS_PASSED" "$(fmt_secs $((end - T_CHAPTER)))" "$(fmt_secs $((end - T_START)))" "$C_OFF"
  else
    printf '\nchapter-05: FAILED after %s s\n' "$(fmt_secs $((end - T_START)))" >&2
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'printf "\ninterrupted at step %s\n" "$STEP" >&2; exit 130' INT TERM HUP

# The last step passed when the script reached its end.
step_done_if_passed() {
  if [ "$1" -eq 0 ]; then step_done; else STEP_STARTED=''; fi
}

# --- helpers for this chapter ------------------------------------------------

re_escape() {
  printf '%s' "$1" | sed 's/[.[\*^$()+?{}|/]/\\&/g'
}

POD_NAMES=''
POD_IPS=''

# web_pods_ready N: exactly N Pods labelled app=web, all Running and
# Ready with distinct IPs. Sets POD_NAMES and POD_IPS.
web_pods_ready() {
  local want=$1 r ips
  run_quiet "minik8s get pods -l app=web -o wide"
  [ "$RC" -eq 0 ] || return 1
  parse_table "$OUT"
  [ "$TABLE_ROWS" -eq "$want" ] || return 1
  for ((r = 1; r <= TABLE_ROWS; r++)); do
    [ "${CELL[$r,READY]}" == 1/1 ] && [ "${CELL[$r,STATUS]}" == Running ] || return 1
    ipv4_is_address "${CELL[$r,IP]}" || return 1
  done
  ips=$(column_values IP | sort -u)
  [ "$(wc -l <<<"$ips")" -eq "$want" ] || return 1
  POD_NAMES=$(column_values NAME | tr '\n' ' ')
  POD_IPS=$(tr '\n' ' ' <<<"$ips")
}

# endpoint_ips_of NAME: the addresses in `get endpoints NAME` (ENDPOINTS
# column without ports), space-separated, or `<none>`.
endpoint_ips_of() {
  run_quiet "minik8s get endpoints $1"
  [ "$RC" -eq 0 ] || return 1
  parse_table "$OUT"
  [ "$TABLE_ROWS" -eq 1 ] || return 1
  if [ "${CELL[1,ENDPOINTS]}" == '<none>' ]; then
    ENDPOINT_IPS=''
  else
    ENDPOINT_IPS=$(tr ',' '\n' <<<"${CELL[1,ENDPOINTS]}" | sed 's/:[0-9]*$//' | sort | tr '\n' ' ')
  fi
}

# endpoints_are NAME IPS: the Endpoints of NAME list exactly IPS.
endpoints_are() {
  endpoint_ips_of "$1" || return 1
  [ "$ENDPOINT_IPS" == "$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort | tr '\n' ' ')" ]
}

# node_rules TABLE: kube-proxy's rules in the node's netns.
node_rules() {
  ip netns exec "$NODE_NETNS" iptables-save -t "$1" 2>/dev/null
}

# proxy_sends_web_to IPS: kube-proxy DNATs default/web to exactly IPS.
proxy_sends_web_to() {
  local got want
  got=$(node_rules nat | grep -F -- '--comment "default/web"' | grep -o -- '-j DNAT --to-destination [0-9.]*:80' |
    awk '{print $4}' | sed 's/:80$//' | sort | tr '\n' ' ')
  want=$(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort | tr '\n' ' ')
  OUT="DNAT targets of default/web: $got"
  [ "$got" == "$want" ]
}

# proxy_has TABLE FIXED-STRING: some rule of TABLE contains the string.
proxy_has() {
  OUT=$(node_rules "$1")
  grep -qF -- "$2" <<<"$OUT"
}

# access_log_total_is N: the web Pods' access logs hold N requests in all
# (a log line lands a moment after its response).
access_log_total_is() {
  local pod n=0
  for pod in $POD_NAMES; do
    run_quiet "minik8s logs $pod"
    n=$((n + $(count_lines '.*"GET / HTTP/1\.1" 200 .*')))
  done
  OUT="$n requests"
  [ "$n" -eq "$1" ]
}

# web_pods_serving N: web_pods_ready, and every Pod IP answers HTTP from
# the host (after a server restart a Pod's old status, old IP included,
# lingers until its new sandbox reports).
web_pods_serving() {
  web_pods_ready "$1" || return 1
  local ip
  for ip in $POD_IPS; do
    curl -s -o /dev/null -m 1 "http://$ip/" || return 1
  done
}

lb_address_assigned() {
  run_quiet "minik8s get svc web --no-headers"
  [[ $OUT =~ ^web[[:space:]]+LoadBalancer[[:space:]]+[0-9.]+[[:space:]]+([0-9.]+)[[:space:]] ]]
}

pods_gone() {
  run_quiet "minik8s get pods"
  [ "$OUT" == "No resources found in default namespace." ]
}

# align_columns: `|`-separated lines as a table, three blanks apart.
align_columns() {
  awk -F'|' '
    { for (i = 1; i <= NF; i++) { cell[NR, i] = $i; if (length($i) > w[i]) w[i] = length($i) } n[NR] = NF }
    END {
      for (r = 1; r <= NR; r++) {
        line = "    "
        for (i = 1; i <= n[r]; i++) line = line (i < n[r] ? sprintf("%-" (w[i] + 3) "s", cell[r, i]) : cell[r, i])
        print line
      }
    }'
}

# show_server_start FLAGS...: the command a reader would type, then start.
show_server_start() {
  printf '%s$ minik8s server --data-dir %s --listen 127.0.0.1:%s %s &%s\n' \
    "$C_CMD" "$DATA_DIR" "$API_PORT" "$*" "$C_OFF"
  server_start "$@"
  pod_watch_start
}

# --- the chapter ---------------------------------------------------------------

cd "$ROOT"
require_defaults_free "${CHAPTER05_WAIT:-0}"
note "minik8s binary: $MINIK8S"
note "a fresh cluster: data dir $DATA_DIR, default CIDRs, no load-balancer provider yet (step 5 adds one)"
T_CHAPTER=$(now_us)
show_server_start --disable-lb --dns-upstream none

HTML='<!DOCTYPE html>'
SVC_HEADER='NAME|TYPE|CLUSTER-IP|EXTERNAL-IP|PORT(S)|AGE'
PODS_WIDE_HEADER='NAME|READY|STATUS|RESTARTS|AGE|IP|NODE|NOMINATED NODE|READINESS GATES'
POD_RE="web-$RE_HASH-$RE_SUFFIX"
WIDE_ROW="$POD_RE|1/1|Running|0|$RE_AGE|$RE_IP|minik8s-node|<none>|<none>"
NODE_POD_CIDR=10.244.0.0/24

# ---------------------------------------------------------------------------
step 0 "Before the chapter: Chapter 4's Deployment (3 nginx Pods, app=web)"
shown "minik8s apply -f examples/web-deploy.yaml"
expect_rc 0 "apply the Deployment"
expect_text "apply the Deployment" "deployment.apps/web created"
wait_until "3 web Pods Running and Ready" 60 web_pods_ready 3
shown "minik8s get pods --show-labels"
check_table "get pods --show-labels" "$OUT" "NAME|READY|STATUS|RESTARTS|AGE|LABELS" \
  "$POD_RE|1/1|Running|0|$RE_AGE|app=web,pod-template-hash=$RE_HASH" \
  "$POD_RE|1/1|Running|0|$RE_AGE|app=web,pod-template-hash=$RE_HASH" \
  "$POD_RE|1/1|Running|0|$RE_AGE|app=web,pod-template-hash=$RE_HASH"
for r in 1 2 3; do
  name=${CELL[$r,NAME]}
  hash=${name#web-}
  hash=${hash%-*}
  [ "${CELL[$r,LABELS]}" == "app=web,pod-template-hash=$hash" ] ||
    fail "get pods --show-labels: row $r" "LABELS app=web,pod-template-hash=$hash (the hash in the Pod's name)" "${CELL[$r,LABELS]}"
done
shown "minik8s get pods -o wide"
check_table "get pods -o wide" "$OUT" "$PODS_WIDE_HEADER" "$WIDE_ROW" "$WIDE_ROW" "$WIDE_ROW"
for ip in $(column_values IP); do
  ipv4_in_cidr "$ip" "$NODE_POD_CIDR" || fail "get pods -o wide: Pod IPs" "IPs inside the node's Pod CIDR $NODE_POD_CIDR" "$ip"
done
[ "$(column_values IP | sort -u | wc -l)" -eq 3 ] || fail "get pods -o wide: Pod IPs" "3 distinct Pod IPs" "$(column_values IP | tr '\n' ' ')"

# ---------------------------------------------------------------------------
step 1 "Endpoints / EndpointSlice: the result of the selector"
note "Endpoints belong to a Service: create the chapter's Service for this step (step 2 creates it again)"
shown "minik8s apply -f examples/web-svc.yaml"
expect_text "apply the Service" "service/web created"
wait_until "Endpoints of web to list the 3 Pods" 30 endpoints_are web "$POD_IPS"
shown "minik8s get endpoints web"
check_table "get endpoints web" "$OUT" "NAME|ENDPOINTS|AGE" "web|($RE_IP:80,){2}$RE_IP:80|$RE_AGE"
endpoint_ips_of web || fail "get endpoints web" "a table" "$OUT"
expect_same_set "get endpoints web: the Pods' IPs" "$POD_IPS" "$ENDPOINT_IPS"
shown "minik8s get endpointslices -l kubernetes.io/service-name=web"
check_table "get endpointslices" "$OUT" "NAME|ADDRESSTYPE|PORTS|ENDPOINTS|AGE" \
  "web-$RE_SUFFIX|IPv4|80|($RE_IP,){2}$RE_IP|$RE_AGE"
expect_same_set "get endpointslices: the Pods' IPs" "$POD_IPS" "${CELL[1,ENDPOINTS]}"

note "a Pod dies: its ReplicaSet starts a new one with a new IP; the dead one leaves the list, the new one joins"
victim=${POD_NAMES%% *}
old_ips=$POD_IPS
run_quiet "minik8s get pod $victim -o wide"
parse_table "$OUT"
victim_ip=${CELL[1,IP]}
shown "minik8s delete pod $victim"
expect_text "delete a Pod" "pod \"$victim\" deleted"
wait_until "a new Pod in place of $victim" 60 web_pods_ready 3
[[ " $POD_NAMES " != *" $victim "* ]] || fail "the ReplicaSet replaces the Pod" "$victim gone" "$POD_NAMES"
wait_until "Endpoints of web to follow the Pods" 30 endpoints_are web "$POD_IPS"
shown "minik8s get pods -o wide"
check_table "get pods -o wide after the delete" "$OUT" "$PODS_WIDE_HEADER" "$WIDE_ROW" "$WIDE_ROW" "$WIDE_ROW"
new_ip=$(comm -13 <(tr ' ' '\n' <<<"$old_ips" | sed '/^$/d' | sort) <(tr ' ' '\n' <<<"$POD_IPS" | sed '/^$/d' | sort))
[ -n "$new_ip" ] && [ "$new_ip" != "$victim_ip" ] ||
  fail "the new Pod's IP" "an IP other than the dead Pod's $victim_ip" "Pod IPs before: $old_ips; after: $POD_IPS"
shown "minik8s get endpoints web"
check_table "get endpoints web after the delete" "$OUT" "NAME|ENDPOINTS|AGE" "web|($RE_IP:80,){2}$RE_IP:80|$RE_AGE"
endpoint_ips_of web || fail "get endpoints web" "a table" "$OUT"
expect_same_set "get endpoints web: dead Pod out, new Pod in" "$POD_IPS" "$ENDPOINT_IPS"

note "a selector that matches nothing"
sed 's/^\(    app:\) web$/\1 nothing/' examples/web-svc.yaml >"$WORK/web-svc-nothing.yaml"
shown "minik8s apply -f $WORK/web-svc-nothing.yaml"
expect_text "apply a selector that matches nothing" "service/web configured"
wait_until "Endpoints of web to be empty" 30 endpoints_are web ""
shown "minik8s get endpoints web"
check_table "get endpoints web, selector matches nothing" "$OUT" "NAME|ENDPOINTS|AGE" "web|<none>|$RE_AGE"
shown "minik8s delete -f examples/web-svc.yaml"
expect_text "delete the step's Service" 'service "web" deleted'

# ---------------------------------------------------------------------------
step 2 "ClusterIP (web-svc.yaml: type ClusterIP, port 80 -> targetPort 80)"
shown "minik8s apply -f examples/web-svc.yaml"
expect_text "apply web-svc.yaml" "service/web created"
shown "minik8s get svc"
check_table "get svc" "$OUT" "$SVC_HEADER" \
  "kubernetes|ClusterIP|10\.96\.0\.1|<none>|443/TCP|$RE_AGE" \
  "web|ClusterIP|$RE_IP|<none>|80/TCP|$RE_AGE"
CIP=${CELL[2,CLUSTER-IP]}
CIP_RE=$(re_escape "$CIP")
ipv4_in_cidr "$CIP" 10.96.0.0/12 || fail "get svc: web's CLUSTER-IP" "an address in the Service CIDR 10.96.0.0/12" "$CIP"
[ "$CIP" != 10.96.0.1 ] && [ "$CIP" != 10.96.0.10 ] || fail "get svc: web's CLUSTER-IP" "an address of its own" "$CIP"
wait_until "Endpoints of web" 30 endpoints_are web "$POD_IPS"
wait_until "kube-proxy's rules for web" 30 proxy_sends_web_to "$POD_IPS"

# ---------------------------------------------------------------------------
step 3 "Calling it from inside the cluster (a temporary curl Pod)"
pod_session "curl -s http://web | head -1" \
  "curl -s http://web.default.svc.cluster.local | head -1" \
  "curl -s http://$CIP | head -1" \
  'for i in $(seq 30); do curl -s -o /dev/null -w "%{http_code}\n" http://web; done | sort | uniq -c'
expect_text "curl -s http://web (short name)" "$HTML" "$(session_part 1)"
expect_text "curl -s http://web.default.svc.cluster.local (FQDN)" "$HTML" "$(session_part 2)"
expect_text "curl -s http://$CIP (ClusterIP)" "$HTML" "$(session_part 3)"
expect_lines "30 more requests to http://web" "$(session_part 4)" ' *30 200'
note "Pods reach each other by name too: from one of the nginx Pods"
first_pod=${POD_NAMES%% *}
shown "minik8s exec $first_pod -- curl -s http://web | head -1"
expect_text "curl http://web from a web Pod" "$HTML"
note "which Pod answered: each nginx access log holds its share of the 34 requests"
wait_until "34 requests in the access logs" 10 access_log_total_is 34
total=0
for pod in $POD_NAMES; do
  shown "minik8s logs $pod | grep -c '\"GET / HTTP/1.1\" 200'"
  [[ $OUT =~ ^[0-9]+$ ]] && [ "$OUT" -ge 1 ] || fail "access log of $pod" "at least 1 request" "$OUT"
  total=$((total + OUT))
done
[ "$total" -eq 34 ] || fail "access logs of the 3 Pods" "34 requests in all (3 + 30 from the temporary Pod, 1 from exec)" "$total"
shown "minik8s logs $first_pod --tail=1"
expect_lines "nginx access-log line" "$OUT" \
  "$RE_IP - - \[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \+0000\] \"GET / HTTP/1\.1\" 200 [0-9]+ \"-\" \"curl/[0-9.]+\""

# ---------------------------------------------------------------------------
step 4 "NodePort (type NodePort, nodePort 30080)"
shown "minik8s apply -f examples/web-svc-nodeport.yaml"
expect_text "apply NodePort" "service/web configured"
shown "minik8s get svc web"
check_table "get svc web (NodePort)" "$OUT" "$SVC_HEADER" "web|NodePort|$CIP_RE|<none>|80:30080/TCP|$RE_AGE"
note "the reader's <NodeIP> (like minikube service web --url):"
shown "minik8s service web --url"
expect_text "service web --url" "http://$NODE_IP:30080"
node_url=$OUT
wait_until "kube-proxy's NodePort rule" 30 proxy_has nat '--dport 30080 -j KUBE-EXT-'
shown "curl -s $node_url | head -1"
expect_text "curl the NodePort from the host" "$HTML"
note "a nodePort outside 30000-32767 is refused:"
sed 's/nodePort: 30080/nodePort: 80/' examples/web-svc-nodeport.yaml >"$WORK/web-svc-nodeport-80.yaml"
shown "minik8s apply -f $WORK/web-svc-nodeport-80.yaml"
expect_rc 1 "apply nodePort 80"
expect_text "apply nodePort 80" 'The Service "web" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767'

# ---------------------------------------------------------------------------
step 5 "LoadBalancer: EXTERNAL-IP <pending> without a provider, an address with one"
shown "minik8s apply -f examples/web-svc-lb.yaml"
expect_text "apply LoadBalancer" "service/web configured"
shown "minik8s get svc web"
check_table "get svc web (LoadBalancer, no provider)" "$OUT" "$SVC_HEADER" \
  "web|LoadBalancer|$CIP_RE|<pending>|80:30080/TCP|$RE_AGE"
note "nothing hands out addresses on this server (--disable-lb): half a second later it is still <pending>"
note "(a provider answers within a few milliseconds: see the restart below)"
sleep 0.5
shown "minik8s get svc web"
check_table "get svc web (LoadBalancer, no provider, 0.5 s later)" "$OUT" "$SVC_HEADER" \
  "web|LoadBalancer|$CIP_RE|<pending>|80:30080/TCP|$RE_AGE"

note "now a provider: restart the same cluster (same data dir) without --disable-lb"
printf '%s$ kill -TERM %s%s\n' "$C_CMD" "$SERVER_PID" "$C_OFF"
pod_watch_stop
server_stop
[ ! -s "$WORK/leftovers" ] || fail "stop the server" "a clean stop" "$(cat "$WORK/leftovers")"
show_server_start --dns-upstream none
wait_until "the 3 web Pods back after the restart" 60 web_pods_serving 3
wait_until "Endpoints of web after the restart" 30 endpoints_are web "$POD_IPS"
wait_until "an EXTERNAL-IP from the provider" 30 lb_address_assigned
shown "minik8s get svc web"
check_table "get svc web (LoadBalancer, provider on)" "$OUT" "$SVC_HEADER" \
  "web|LoadBalancer|$CIP_RE|$RE_IP|80:30080/TCP|$RE_AGE"
LB_IP=${CELL[1,EXTERNAL-IP]}
ipv4_in_cidr "$LB_IP" 172.18.255.0/24 || fail "get svc web: EXTERNAL-IP" "an address of the pool 172.18.255.0/24" "$LB_IP"
wait_until "kube-proxy's rules for web" 30 proxy_sends_web_to "$POD_IPS"
wait_until "kube-proxy's rule for $LB_IP" 30 proxy_has nat "-d $LB_IP/32"
shown "curl -s http://$LB_IP | head -1"
expect_text "curl the LoadBalancer address from the host" "$HTML"
shown "minik8s service web --url"
expect_lines "service web --url (LoadBalancer)" "$OUT" "http://$(re_escape "$NODE_IP"):30080" "http://$(re_escape "$LB_IP"):80"

# ---------------------------------------------------------------------------
step 6 "ExternalName (a DNS CNAME) and headless (clusterIP: None)"
shown "minik8s apply -f examples/db-externalname.yaml"
expect_text "apply ExternalName" "service/db created"
shown "minik8s apply -f examples/web-headless.yaml"
expect_text "apply headless" "service/web-headless created"
shown "minik8s get svc db web-headless"
check_table "get svc db web-headless" "$OUT" "$SVC_HEADER" \
  "db|ExternalName|<none>|db\.example\.com|<none>|$RE_AGE" \
  "web-headless|ClusterIP|None|<none>|80/TCP|$RE_AGE"
note "no selector, no endpoints:"
shown "minik8s get endpoints db"
expect_rc 1 "get endpoints db"
expect_text "get endpoints db" 'Error from server (NotFound): endpoints "db" not found'
wait_until "Endpoints of web-headless" 30 endpoints_are web-headless "$POD_IPS"
note "the cluster DNS runs with --dns-upstream none: nothing outside cluster.local resolves"
pod_session "dig +noall +answer db.default.svc.cluster.local" \
  "nslookup db" \
  "nslookup web-headless"
expect_lines "dig db.default.svc.cluster.local: a CNAME" "$(session_part 1)" \
  'db\.default\.svc\.cluster\.local\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+CNAME[[:space:]]+db\.example\.com\.'
part=$(session_part_dns 2)
expect_some_line "nslookup db: the CNAME" 'db\.default\.svc\.cluster\.local[[:space:]]+canonical name = db\.example\.com\.' "$part"
expect_some_line "nslookup db: db.example.com stays unresolved" "\*\* server can't find db\.example\.com: REFUSED" "$part"
part=$(session_part_dns 3)
expect_lines "nslookup web-headless: the Pod IPs" "$part" \
  'Server:[[:space:]]+10\.96\.0\.10' 'Address:[[:space:]]+10\.96\.0\.10#53' \
  'Name:[[:space:]]+web-headless\.default\.svc\.cluster\.local' "Address: $RE_IP" \
  'Name:[[:space:]]+web-headless\.default\.svc\.cluster\.local' "Address: $RE_IP" \
  'Name:[[:space:]]+web-headless\.default\.svc\.cluster\.local' "Address: $RE_IP"
expect_same_set "nslookup web-headless: the Pod IPs" "$POD_IPS" "$(grep '^Address: ' <<<"$part" | awk '{print $2}')"

# ---------------------------------------------------------------------------
step 7 "kube-proxy: DNAT rules in the node, the ClusterIP on no interface"
shown "ip netns exec $NODE_NETNS iptables-save -t nat | grep -F default/web"
expect_some_line "the ClusterIP rule" \
  "-A KUBE-SERVICES -d $CIP_RE/32 -p tcp -m comment --comment \"default/web cluster IP\" -m tcp --dport 80 -j KUBE-SVC-[A-Z0-9]{16}"
svc_chain=$(grep -o -- "-d $CIP_RE/32 .* -j KUBE-SVC-[A-Z0-9]*" <<<"$OUT" | awk '{print $NF}' || true)
[ "$(count_lines "-A $svc_chain -m comment --comment \"default/web -> $RE_IP:80\"( -m statistic --mode random --probability [0-9.]+)? -j KUBE-SEP-[A-Z0-9]{16}")" -eq 3 ] ||
  fail "the Service chain $svc_chain" "3 rules, one per endpoint" "$(grep -F -- "-A $svc_chain " <<<"$OUT")"
expect_some_line "1 in 3 to the first endpoint" "-A $svc_chain .*--probability 0\.33333333349 -j KUBE-SEP-[A-Z0-9]{16}"
expect_some_line "1 in 2 of the rest to the second" "-A $svc_chain .*--probability 0\.50000000000 -j KUBE-SEP-[A-Z0-9]{16}"
for ip in $POD_IPS; do
  expect_some_line "DNAT to $ip" \
    "-A KUBE-SEP-[A-Z0-9]{16} -p tcp -m comment --comment \"default/web\" -m tcp -j DNAT --to-destination $(re_escape "$ip"):80"
done
expect_some_line "the NodePort rule" "-A KUBE-NODEPORTS -p tcp -m comment --comment \"default/web\" -m tcp --dport 30080 -j KUBE-EXT-[A-Z0-9]{16}"
expect_some_line "the LoadBalancer address rule" \
  "-A KUBE-SERVICES -d $(re_escape "$LB_IP")/32 -p tcp -m comment --comment \"default/web loadbalancer IP\" -m tcp --dport 80 -j KUBE-EXT-[A-Z0-9]{16}"
shown "ip netns exec $NODE_NETNS ip -4 -br addr"
expect_some_line "the node's bridge" 'cni0[[:space:]]+UP[[:space:]]+10\.244\.0\.1/24[[:space:]]*'
expect_some_line "the node's NodeIP" "eth0@[a-z0-9]+[[:space:]]+UP[[:space:]]+$(re_escape "$NODE_IP")/24[[:space:]]*"
expect_no_line "ClusterIP on no interface of the node" ".*${CIP_RE}[/ ].*"
shown "ip -4 -o addr show | grep -cwF $CIP"
expect_text "ClusterIP on no interface of the host" "0"

# ---------------------------------------------------------------------------
step 8 "DNS: the Service name from inside a Pod"
pod_session "nslookup web" "cat /etc/resolv.conf"
expect_lines "nslookup web" "$(session_part_dns 1)" \
  'Server:[[:space:]]+10\.96\.0\.10' 'Address:[[:space:]]+10\.96\.0\.10#53' \
  'Name:[[:space:]]+web\.default\.svc\.cluster\.local' "Address: $CIP_RE"
expect_lines "the Pod's /etc/resolv.conf" "$(session_part 2)" \
  'nameserver 10\.96\.0\.10' 'search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local' 'options ndots:5'
note "the DNS server's own Service:"
shown "minik8s get svc kube-dns -n kube-system"
check_table "get svc kube-dns -n kube-system" "$OUT" "$SVC_HEADER" \
  "kube-dns|ClusterIP|10\.96\.0\.10|<none>|53/UDP,53/TCP|$RE_AGE"

# ---------------------------------------------------------------------------
step 9 "Cleanup"
shown "minik8s delete -f examples/web-svc.yaml"
expect_text "delete -f web-svc.yaml" 'service "web" deleted'
shown "minik8s delete -f examples/db-externalname.yaml -f examples/web-headless.yaml"
expect_lines "delete the ExternalName and headless Services" "$OUT" 'service "db" deleted' 'service "web-headless" deleted'
shown "minik8s delete deploy web"
expect_text "delete deploy web" 'deployment.apps "web" deleted'
wait_until "the Deployment's Pods to go" 60 pods_gone
shown "minik8s get svc,deploy,pods"
check_table "get svc,deploy,pods" "$OUT" "$SVC_HEADER" \
  "service/kubernetes|ClusterIP|10\.96\.0\.1|<none>|443/TCP|$RE_AGE"

# ---------------------------------------------------------------------------
step 10 "Exercises"
note "back to Chapter 4's state, with the reader's own copy of web-svc.yaml"
shown "minik8s apply -f examples/web-deploy.yaml"
expect_text "apply the Deployment again" "deployment.apps/web created"
wait_until "3 web Pods Running and Ready" 60 web_pods_ready 3
cd "$WORK"
shown "cp $ROOT/examples/web-svc.yaml web-svc.yaml"
expect_rc 0 "copy web-svc.yaml"

note "Exercise 1: type ClusterIP -> NodePort -> LoadBalancer, one apply each"
declare -a ex1_rows=()
for type in ClusterIP NodePort LoadBalancer; do
  if [ "$type" != ClusterIP ]; then
    shown "sed -i 's/^  type: .*/  type: $type/' web-svc.yaml"
    expect_rc 0 "edit web-svc.yaml"
  fi
  shown "minik8s apply -f web-svc.yaml"
  if [ "$type" == ClusterIP ]; then
    expect_text "exercise 1: apply $type" "service/web created"
  else
    expect_text "exercise 1: apply $type" "service/web configured"
  fi
  [ "$type" != LoadBalancer ] || wait_until "an EXTERNAL-IP from the provider" 30 lb_address_assigned
  shown "minik8s get svc web"
  case $type in
    ClusterIP) row="web|ClusterIP|$RE_IP|<none>|80/TCP|$RE_AGE" ;;
    NodePort) row="web|NodePort|${ex1_cip:-}|<none>|80:3[0-9]{4}/TCP|$RE_AGE" ;;
    LoadBalancer) row="web|LoadBalancer|${ex1_cip:-}|$RE_IP|${ex1_ports:-}|$RE_AGE" ;;
  esac
  check_table "exercise 1: get svc web as $type" "$OUT" "$SVC_HEADER" "$row"
  ex1_cip=$(re_escape "${CELL[1,CLUSTER-IP]}")
  ex1_rows+=("${CELL[1,TYPE]}|${CELL[1,CLUSTER-IP]}|${CELL[1,EXTERNAL-IP]}|${CELL[1,PORT(S)]}")
  if [ "$type" == NodePort ]; then
    node_port=${CELL[1,PORT(S)]#80:}
    node_port=${node_port%/TCP}
    ((node_port >= 30000 && node_port <= 32767)) || fail "exercise 1: the picked nodePort" "a port in 30000-32767" "$node_port"
    ex1_ports=$(re_escape "${CELL[1,PORT(S)]}")
  fi
done
CIP_EX1=${CELL[1,CLUSTER-IP]}
CIP_EX1_RE=$(re_escape "$CIP_EX1")
ipv4_in_cidr "${CELL[1,EXTERNAL-IP]}" 172.18.255.0/24 || fail "exercise 1: EXTERNAL-IP" "an address of the pool 172.18.255.0/24" "${CELL[1,EXTERNAL-IP]}"
note "the three steps side by side (without nodePort in the file, one was picked from the range; with the"
note "provider off, as in step 5, the LoadBalancer row reads <pending>):"
{
  echo "TYPE|CLUSTER-IP|EXTERNAL-IP|PORT(S)"
  printf '%s\n' "${ex1_rows[@]}"
} | align_columns

note "Exercise 2: break the selector by one character"
shown "sed -i 's/app: web\$/app: webb/' web-svc.yaml"
expect_rc 0 "edit the selector"
shown "minik8s apply -f web-svc.yaml"
expect_text "apply the broken selector" "service/web configured"
wait_until "Endpoints of web to be empty" 30 endpoints_are web ""
wait_until "kube-proxy's reject rule for web" 30 proxy_has filter "-d $CIP_EX1/32"
shown "minik8s get endpoints web"
check_table "exercise 2: get endpoints web" "$OUT" "NAME|ENDPOINTS|AGE" "web|<none>|$RE_AGE"
pod_session "curl -sS --connect-timeout 3 http://web" "curl -sv --connect-timeout 3 http://web 2>&1 | grep -i refused"
expect_lines "exercise 2: curl http://web with no endpoints" "$(session_part 1)" \
  "curl: \(7\) Failed to connect to web port 80 after [0-9]+ ms: (Couldn't connect to server|Connection refused)"
expect_lines "exercise 2: the error is connection refused" "$(session_part 2)" \
  "\* connect to $CIP_EX1_RE port 80 failed: Connection refused"
note "fix it and traffic returns"
shown "sed -i 's/app: webb\$/app: web/' web-svc.yaml"
shown "minik8s apply -f web-svc.yaml"
expect_text "apply the fixed selector" "service/web configured"
wait_until "Endpoints of web back" 30 endpoints_are web "$POD_IPS"
wait_until "kube-proxy's rules for web back" 30 proxy_sends_web_to "$POD_IPS"
shown "minik8s get endpoints web"
check_table "exercise 2: get endpoints web, fixed" "$OUT" "NAME|ENDPOINTS|AGE" "web|($RE_IP:80,){2}$RE_IP:80|$RE_AGE"

note "Exercise 2 (traffic is back) and exercise 3 (three names, one resolv.conf) in one temporary Pod"
pod_session "curl -s http://web | head -1" \
  "nslookup web" \
  "nslookup web.default.svc.cluster.local" \
  "nslookup kubernetes.default.svc.cluster.local" \
  "cat /etc/resolv.conf"
expect_text "exercise 2: curl http://web after the fix" "$HTML" "$(session_part 1)"
for k in 2 3; do
  expect_lines "exercise 3: ${SESSION_CMDS[k - 1]}" "$(session_part_dns "$k")" \
    'Server:[[:space:]]+10\.96\.0\.10' 'Address:[[:space:]]+10\.96\.0\.10#53' \
    'Name:[[:space:]]+web\.default\.svc\.cluster\.local' "Address: $CIP_EX1_RE"
done
expect_lines "exercise 3: nslookup kubernetes.default.svc.cluster.local" "$(session_part_dns 4)" \
  'Server:[[:space:]]+10\.96\.0\.10' 'Address:[[:space:]]+10\.96\.0\.10#53' \
  'Name:[[:space:]]+kubernetes\.default\.svc\.cluster\.local' 'Address: 10\.96\.0\.1'
expect_lines "exercise 3: /etc/resolv.conf" "$(session_part 5)" \
  'nameserver 10\.96\.0\.10' 'search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local' 'options ndots:5'
note "who answered: the cluster DNS at 10.96.0.10 (kube-dns) for all three; web and its FQDN are the same"
note "ClusterIP $CIP_EX1 (the short name grew by the first search domain), kubernetes is the API's own Service"
cd "$ROOT"

exit 0
