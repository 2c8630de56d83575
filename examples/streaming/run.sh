#!/usr/bin/env bash
# The pushed penguins model serving a NATS JetStream stream: the penguins
# pipeline pushes a blessed model to a registry (skipped when one is
# there), `mlsteps infer --stream --watch` follows the registry's current
# version, a publisher sends every penguin plus three malformed messages,
# and a reader prints the results and the dead letters. SIGTERM drains the
# consumer. Needs NATS with JetStream ($NATS_SERVER_URL, default
# nats://127.0.0.1:4222).
#   examples/streaming/run.sh [bin/mlsteps]          # from the repository root
set -euo pipefail
bin=${1:-bin/mlsteps}
work=${STREAMING_WORK:-$(pwd)/.demo}
registry=${REGISTRY:-file://$work/registry}
prefix=${PREFIX:-penguins-$$}

if ! "$bin" registry show --registry "$registry" --name penguins >/dev/null 2>&1; then
	echo "== no penguins model in $registry yet: running the penguins pipeline to push one"
	"$bin" --log-level warn run examples/penguins/pipeline.yaml --root "file://$work/runs" --param registry="$registry" >/dev/null
fi
echo "== serving: $("$bin" registry list --registry "$registry" --name penguins | awk '$2=="*"{print "penguins version " $1 ", " $NF}')"

echo "== publish: go run ./examples/streaming/publish --prefix $prefix"
go run ./examples/streaming/publish --prefix "$prefix" --file .cache/vega/data/penguins.json
inputs=$((344 + 3))

echo "== mlsteps infer --stream --watch $registry/penguins/current --source nats://$prefix.in?consumer=infer ..."
"$bin" --log-level warn infer --stream --watch "$registry/penguins/current" --watch-interval 5s \
	--source "nats://$prefix.in?consumer=infer" --sink "nats://$prefix.out" --dead-letters "nats://$prefix.dead" \
	--max-batch-duration 20ms --out-root "file://$work/stream/$prefix" &
consumer=$!
trap 'kill -TERM $consumer 2>/dev/null || true' EXIT

echo "== read: go run ./examples/streaming/read --prefix $prefix --want $inputs"
go run ./examples/streaming/read --prefix "$prefix" --want "$inputs" --delete-stream

kill -TERM $consumer
wait $consumer
trap - EXIT
echo "== the consumer drained and exited 0; its run's counts:"
"$bin" artifact show --summary "file://$work/stream/$prefix/predictions" | grep -A1 -E '^\s+stream' | head -4
