#!/usr/bin/env bash
# Where a call's time goes, by kernel family, from perf's samples of
# bench/profile_call.py (arguments as there). Needs Linux perf.
#   bash bench/profile_shares.sh simple_rnn bf16 inference 400 100,32,64,256 1
set -euo pipefail
data=$(mktemp)
trap 'rm -f "$data"' EXIT
PYTHONPATH=. perf record -q -o "$data" -F 4000 python3 bench/profile_call.py "$@"
perf report -i "$data" --no-children --sort symbol 2>/dev/null | grep -v '^#' | awk '
  /rnnkern::/ {
    s += $1
    if ($0 ~ /mac_block|product_group/) step += $1
    else if ($0 ~ /mac_panel_c|gemm_tile/) gemm += $1
    else if ($0 ~ /step_items/) point += $1
    else if ($0 ~ /backward_loop/) bpoint += $1
    else if ($0 ~ /par::barrier/) bar += $1
    else other += $1
  }
  END {
    if (s == 0) { print "no rnnkern samples"; exit 1 }
    printf "share of rnnkern samples: step products %.1f%%, forward pointwise %.1f%%, " \
           "backward pointwise %.1f%%, weight-gradient GEMMs %.1f%%, barrier %.1f%%, other %.1f%%\n",
           100*step/s, 100*point/s, 100*bpoint/s, 100*gemm/s, 100*bar/s, 100*other/s
  }'
