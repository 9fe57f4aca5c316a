#!/usr/bin/env bash
# Measures the time to converge after the final heal: for 3 and 5 nodes,
# with no faults and with each fault kind, a campaign of RUNS runs; prints
# the median and max of each (from the campaign table's last line).
#   [NET=lab|loopback|auto] scripts/convergence-times.sh [RUNS]      (default 20 runs, NET=auto)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
bin=$(mktemp -d)/ec-counter
go build -o "$bin" ./cmd/ec-counter
store=$(mktemp -d)
for nodes in 3 5; do
  for kind in none partition delay loss kill pause; do
    args=(test --net "${NET:-auto}" --store "$store" --name "conv-$nodes-$kind" --nodes "$nodes" --clients 5
          --requests 60 --rate 20 --nemesis-interval 1s --test-count "$runs" --seed 1)
    [ "$kind" != none ] && args+=(--nemesis "$kind")
    line=$("$bin" "${args[@]}" | grep 'time to converge' || echo "no convergence time (a run failed?)")
    printf '%d nodes, %-9s %s\n' "$nodes" "$kind:" "$line"
  done
done
