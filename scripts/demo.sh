#!/usr/bin/env bash
# make demo: the penguins pipeline (import → validate → transform,
# import-model → infer) on
# file:// storage, run twice: cold, then fully cached; then what it wrote.
set -euo pipefail
bin=${1:-bin/mlsteps}
root="$(pwd)/.demo/runs"

echo "== mlsteps run examples/penguins/pipeline.yaml --root file://$root   (cold)"
"$bin" --log-level warn run examples/penguins/pipeline.yaml --root "file://$root"

echo
echo "== the same again: every step is a cache hit (keys: step, version, binary, parameters, input content)"
"$bin" --log-level warn run examples/penguins/pipeline.yaml --root "file://$root"

examples=$(ls -d "$root"/import/*/examples | head -1)
echo
echo "== mlsteps artifact show --summary file://$examples"
"$bin" artifact show --summary "file://$examples"

echo
echo "== anomalies (TFDV's Anomalies JSON) and the statistics report"
cat "$(ls -d "$root"/validate/*/anomalies | head -1)/anomalies.json"
echo "report: $(ls -d "$root"/validate/*/statistics | head -1)/report.html"

graph=$(ls -d "$root"/transform/*/transform_graph | head -1)
echo
echo "== the fitted preprocessing as ONNX: $graph/transform.onnx"
"$bin" artifact verify "file://$graph"

preds=$(ls -d "$root"/infer/*/predictions | head -1)
echo
echo "== predictions of the PyTorch-trained classifier on the eval split (metrics under Beam's names)"
"$bin" artifact show --summary "file://$preds"
