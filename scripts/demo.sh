#!/usr/bin/env bash
# make demo: the penguins example end to end on file:// storage (no server):
# import → validate → transform → train → evaluate → deploy → infer, cold,
# then fully cached, then with one parameter changed; then the registry and
# the lineage of the pushed model.
set -euo pipefail
bin=${1:-bin/mlsteps}
demo=${DEMO_DIR:-$(pwd)/.demo}
root="$demo/runs"
registry="file://$demo/registry"
run() {
	"$bin" --log-level warn run examples/penguins/pipeline.yaml --root "file://$root" --param registry="$registry" "$@"
}

echo "== 1. mlsteps run examples/penguins/pipeline.yaml   (cold)"
run
echo
echo "== 2. the same again: every step is a cache hit (keys: step, version, binary, parameters, input content)"
run
echo
echo "== 3. one parameter changed (--param trees=40): train and what follows re-run; evaluate compares with the pushed model"
run --param trees=40
echo
echo "== 4. the registry: mlsteps registry list --registry $registry --name penguins"
"$bin" registry list --registry "$registry" --name penguins
pushed=$(ls -td "$root"/deploy/*/pushed_model | head -1)
echo
echo "== 5. where the pushed model came from: mlsteps lineage --depth 4 file://$pushed"
"$bin" lineage --depth 4 "file://$pushed" | cut -c1-160
echo
echo "Serve it: $bin serve --watch penguins=$registry/penguins/current --addr 127.0.0.1:8080"
