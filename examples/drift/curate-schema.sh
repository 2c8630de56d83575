#!/usr/bin/env bash
# Makes examples/drift/schema.json the way a TFX user curates a schema:
# infer it from the previous span (2012) with `mlsteps validate`, review it,
# and set the comparators the team cares about:
#   - date is an identifier (one value per day): no distribution comparators;
#   - weather, the label: drift above 0.1 and skew above 0.05 (L-infinity);
#   - precipitation: skew above 0.05 (Jensen-Shannon), drift stays at 0.1.
# Run from the repository root after `make build`.
set -euo pipefail
bin=${1:-bin/mlsteps}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" --log-level warn import --source .cache/vega/data/seattle-weather.csv --split-by date --split train=2012 --out-root "file://$tmp/i"
"$bin" --log-level warn validate --in "examples=file://$tmp/i/examples" --fail-on never --out-root "file://$tmp/v"
python3 - "$tmp/v/schema/schema.json" examples/drift/schema.json <<'PY'
import json, sys
schema = json.load(open(sys.argv[1]))
for f in schema["feature"]:
    if f["name"] == "date":
        f.pop("drift_comparator", None)
        f.pop("skew_comparator", None)
    if f["name"] == "weather":
        f["skew_comparator"]["infinity_norm"]["threshold"] = 0.05
    if f["name"] == "precipitation":
        f["skew_comparator"]["jensen_shannon_divergence"]["threshold"] = 0.05
json.dump(schema, open(sys.argv[2], "w"), indent=2)
open(sys.argv[2], "a").write("\n")
PY
echo "wrote examples/drift/schema.json"
