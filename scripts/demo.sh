#!/usr/bin/env bash
# make demo: import the penguins dataset into a Dataset artifact on file://
# storage, split train/eval, and show what was written.
set -euo pipefail
bin=${1:-bin/mlsteps}
root="$(pwd)/.demo/run-$(date -u +%Y%m%dT%H%M%SZ)"
data="$(pwd)/.cache/vega/data/penguins.json"

echo "== mlsteps import: penguins.json -> Dataset at file://$root/examples"
"$bin" --log-format text import \
  --source "file://$data" \
  --out-root "file://$root" \
  --split train=0.8,eval=0.2 --seed 7

echo
echo "== what it wrote"
(cd "$root" && find . -type f | sort)

echo
echo "== mlsteps artifact show --summary file://$root/examples"
"$bin" artifact show --summary "file://$root/examples"

echo
echo "== mlsteps artifact verify file://$root/examples"
"$bin" artifact verify "file://$root/examples"
