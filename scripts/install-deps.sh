#!/usr/bin/env bash
# Install the operating-system packages minik8s and its tests use: iproute2
# (ip netns), iptables (kube-proxy's rules), nftables (`nft`, with which a
# test compares the proxy's netlink writer to iptables-restore), conntrack
# (stale UDP flows), dnsutils (nslookup/dig in Pods), curl and wget (the
# curl image's tools).
set -euo pipefail
need=()
for pair in ping:iputils-ping ip:iproute2 iptables-restore:iptables nft:nftables conntrack:conntrack nslookup:dnsutils dig:dnsutils curl:curl wget:wget busybox:busybox; do
  cmd=${pair%%:*}; pkg=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "minik8s needs these packages: ${need[*]}; run this script as root (sudo $0)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need[@]}" | sort -u) >/dev/null
fi
# br_netfilter lets the node's bridge pass Pod-to-Pod traffic through
# iptables (Service DNAT replies between Pods on the same bridge).
modprobe br_netfilter 2>/dev/null || true
echo "minik8s dependencies present: iproute2 iptables nftables conntrack dnsutils curl wget busybox ping"
