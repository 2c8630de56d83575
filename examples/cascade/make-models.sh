#!/usr/bin/env bash
# Builds the two models of the cascade example with mlsteps' own steps:
#   A, species: gradient-boosted trees on the transformed penguins
#     (label, score_Adelie, score_Chinstrap, score_Gentoo);
#   B, body mass: ridge regression on A's three scores plus two raw
#     measurements, trained on what A answered for the train split.
# B's training rows are A's Predictions imported back as a Dataset (no step
# turns Predictions into a Dataset, and a pipeline cannot pass a step's
# output URI into a parameter such as --source or --cascade, so this is a
# script rather than a pipeline).
# Usage, from the repository root after `make build`:
#   examples/cascade/make-models.sh [BIN] [DIR]
# DIR, a local folder, defaults to .cache/examples/cascade, where
# pipeline.yaml looks; it is emptied first (artifacts are immutable).
set -euo pipefail
bin=${1:-bin/mlsteps}
dir=${2:-.cache/examples/cascade}
rm -rf "$dir"
mkdir -p "$dir"
root="file://$(cd "$dir" && pwd)"
run() { "$bin" --log-level warn "$@"; }

run import --source .cache/vega/data/penguins.json --split train=0.8,eval=0.2 --seed 7 --out-root "$root/data"
run transform --in "examples=$root/data/examples" --spec examples/cascade/species-transform.yaml --out-root "$root/species-transform"
run train --in "examples=$root/species-transform/transformed_examples" --in "transform=$root/species-transform/transform_graph" \
    --trainer builtin:gbdt --hparams '{"trees": 50, "max_depth": 3, "learning_rate": 0.1}' --seed 7 --name species --out-root "$root/species"
# A over the train split: B learns from A's answers, not from the true species.
run infer --in "examples=$root/data/examples" --in "model=$root/species/model" --splits train --out-root "$root/species-answers"
run import --source "$root/species-answers/predictions/Split-train/*.parquet" --split train=1 --out-root "$root/body-mass-data"
run train --in "examples=$root/body-mass-data/examples" --trainer builtin:linear --label "Body Mass (g)" \
    --features 'score_Adelie,score_Chinstrap,score_Gentoo,Flipper Length (mm),Beak Depth (mm)' --eval-split "" \
    --name body-mass --out-root "$root/body-mass"
echo "species model:   $root/species/model"
echo "body-mass model: $root/body-mass/model"
