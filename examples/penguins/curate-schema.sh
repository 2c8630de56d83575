#!/usr/bin/env bash
# Makes examples/penguins/schema.json the way a TFX user curates a schema:
# infer it from the training split with `mlsteps validate`, review it, and
# accept what review found legitimate: penguins records an unknown sex as ".",
# so "." joins Sex's domain. Run from the repository root after `make build`.
set -euo pipefail
bin=${1:-bin/mlsteps}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" --log-level warn import --source .cache/vega/data/penguins.json --split train=0.8,eval=0.2 --seed 7 --out-root "file://$tmp/i"
"$bin" --log-level warn validate --in "examples=file://$tmp/i/examples" --fail-on never --out-root "file://$tmp/v"
python3 - "$tmp/v/schema/schema.json" examples/penguins/schema.json <<'PY'
import json, sys
schema = json.load(open(sys.argv[1]))
for f in schema["feature"]:
    if f["name"] == "Sex" and "." not in f["string_domain"]["value"]:
        f["string_domain"]["value"].append(".")
json.dump(schema, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2], "a").write("\n")
PY
echo "wrote examples/penguins/schema.json"
