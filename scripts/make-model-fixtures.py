#!/usr/bin/python3
"""Trains small real models on the vega datasets and writes them as ONNX
fixtures into testdata/models/, with expected.json: what the framework that
trained each model predicts for the first 40 usable rows of its dataset.

The Go tests of components/inference read these files to check that ONNX
Runtime, driven by the inference engine, answers like PyTorch and
scikit-learn. The outputs are committed; rerun this script only to change
them (it is deterministic: same inputs, same bytes).

Needs Debian's python3-torch, python3-sklearn, python3-onnx and
python3-pandas, and the vega datasets fetched by `make setup`:

    /usr/bin/python3 scripts/make-model-fixtures.py

Models:
  penguins-mlp.onnx          PyTorch MLP, 4 penguin measurements -> species
  penguins-trees.onnx        scikit-learn gradient boosting, converted here
                             to an ai.onnx.ml TreeEnsembleClassifier
  cars-mpg-linear.onnx       scikit-learn Ridge regression -> miles per gallon
  penguins-by-island/*.onnx  one PyTorch softmax regression per island
  flights-delay.onnx         PyTorch MLP regression, distance -> delay

Every model takes "x" float32 [N,F] (a dynamic batch axis) and records its
feature columns in the metadata_props entry "mlsteps.features" and, for
classifiers, its class names in "mlsteps.classes" (JSON lists).
"""

import hashlib
import io
import json
import os
import random
import sys

import numpy as np
import pandas as pd
import torch
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import Ridge

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("MLSTEPS_VEGA_DATA", os.path.join(ROOT, ".cache", "vega", "data"))
OUT = os.path.join(ROOT, "testdata", "models")

# ORT 1.30 runs these; IR 8 is what onnx 1.12 writes.
OPSET = 17
ML_OPSET = 3
EXPECTED_ROWS = 40

PENGUIN_FEATURES = ["Beak Length (mm)", "Beak Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"]
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
CAR_FEATURES = ["Horsepower", "Weight_in_lbs", "Acceleration", "Displacement"]
# flights-3m.parquet imports as date (timestamp), delay, distance (int64),
# origin, destination (strings): distance is its only numeric feature. The
# parquet cannot be read here (no pyarrow), so the model trains on
# flights-20k.json, which has the same columns.
FLIGHT_FEATURES = ["distance"]


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load(name):
    """Reads a vega JSON dataset with Python's json module: pandas' own
    float parser is not correctly rounded, and the Go side reads the
    values exactly."""
    with open(os.path.join(DATA, name)) as f:
        return pd.DataFrame(json.load(f))


def usable(df, columns):
    """Rows with a value in every column; the index keeps file positions."""
    return df[df[columns].notna().all(axis=1)]


def with_metadata(model, features, classes=None):
    props = {"mlsteps.features": json.dumps(features)}
    if classes is not None:
        props["mlsteps.classes"] = json.dumps(classes)
    onnx.helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    return model


def write(rel, model, written):
    path = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = model.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    written.append((rel, len(data), hashlib.sha256(data).hexdigest()[:12]))


def f32(v):
    """A float32 as the JSON number that reads back as exactly it."""
    return float(np.float32(v))


def expected_rows(df, features, outputs):
    """The first rows of df with their file position, feature values as
    given and the framework's outputs (name -> [N,k] array)."""
    rows = []
    for i, (pos, rec) in enumerate(df.head(EXPECTED_ROWS).iterrows()):
        rows.append({
            "row": int(pos),
            "x": [float(rec[c]) for c in features],
            "outputs": {name: [float(v) for v in np.atleast_1d(vals[i])] for name, vals in outputs.items()},
        })
    return rows


# ---------------------------------------------------------------- PyTorch

class Standardised(torch.nn.Module):
    """net over standardised inputs, so the exported model takes raw
    features; for regression the output is scaled back to the target's
    units; for classification a softmax gives probabilities."""

    def __init__(self, net, mean, std, y_mean=None, y_std=None):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.regression = y_mean is not None
        if self.regression:
            self.register_buffer("y_mean", torch.tensor([y_mean], dtype=torch.float32))
            self.register_buffer("y_std", torch.tensor([y_std], dtype=torch.float32))

    def forward(self, x):
        z = self.net((x - self.mean) / self.std)
        if self.regression:
            return z * self.y_std + self.y_mean
        return torch.softmax(z, dim=1)


def fit(model, x, y, loss_fn, epochs, lr, weight_decay=0.0):
    """Full-batch Adam over (x, y) in standardised units."""
    opt = torch.optim.Adam(model.net.parameters(), lr=lr, weight_decay=weight_decay)
    model.train()
    for _ in range(epochs):
        opt.zero_grad()
        out = model.net((x - model.mean) / model.std)
        target = (y - model.y_mean) / model.y_std if model.regression else y
        loss_fn(out, target).backward()
        opt.step()
    model.eval()
    return model


def export(model, features, out_name, classes=None):
    buf = io.BytesIO()
    dummy = torch.zeros(2, len(features), dtype=torch.float32)
    torch.onnx.export(model, dummy, buf, input_names=["x"], output_names=[out_name],
                      dynamic_axes={"x": {0: "N"}, out_name: {0: "N"}}, opset_version=OPSET,
                      do_constant_folding=True)
    return with_metadata(onnx.load_from_string(buf.getvalue()), features, classes)


def classifier_data(df):
    x = torch.tensor(df[PENGUIN_FEATURES].to_numpy(np.float32))
    y = torch.tensor([SPECIES.index(s) for s in df["Species"]], dtype=torch.int64)
    return x, y


def penguins_mlp(penguins, written, expected, report):
    seed_everything(1)
    df = usable(penguins, PENGUIN_FEATURES)
    x, y = classifier_data(df)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    model = Standardised(net, x.mean(0).numpy(), x.std(0).numpy())
    fit(model, x, y, torch.nn.CrossEntropyLoss(), epochs=300, lr=0.01)
    with torch.no_grad():
        probs = model(x).numpy()
    report.append(f"penguins-mlp: training accuracy {np.mean(probs.argmax(1) == y.numpy()):.4f} on {len(df)} rows")
    write("penguins-mlp.onnx", export(model, PENGUIN_FEATURES, "probs", SPECIES), written)
    expected.append({
        "name": "penguins-mlp", "file": "penguins-mlp.onnx", "dataset": "penguins.json",
        "features": PENGUIN_FEATURES, "classes": SPECIES, "outputs": ["probs"],
        "rows": expected_rows(df, PENGUIN_FEATURES, {"probs": probs}),
    })


def penguins_by_island(penguins, written, expected, report):
    index = {"key_column": "Island", "models": {}}
    for island in ISLANDS:
        seed_everything(2)
        df = usable(penguins[penguins["Island"] == island], PENGUIN_FEATURES)
        x, y = classifier_data(df)
        # Softmax regression over all three species, even where an island
        # has only one: keyed models must agree on their outputs.
        model = Standardised(torch.nn.Linear(4, 3), x.mean(0).numpy(), x.std(0).numpy())
        fit(model, x, y, torch.nn.CrossEntropyLoss(), epochs=200, lr=0.05, weight_decay=1e-3)
        with torch.no_grad():
            probs = model(x).numpy()
        report.append(f"penguins-by-island/{island}: training accuracy "
                      f"{np.mean(probs.argmax(1) == y.numpy()):.4f} on {len(df)} rows")
        file = f"{island}.onnx"
        write(f"penguins-by-island/{file}", export(model, PENGUIN_FEATURES, "probs", SPECIES), written)
        index["models"][island] = file
        expected.append({
            "name": f"penguins-by-island/{island}", "file": f"penguins-by-island/{file}",
            "dataset": "penguins.json", "key_column": "Island", "key": island,
            "features": PENGUIN_FEATURES, "classes": SPECIES, "outputs": ["probs"],
            "rows": expected_rows(df, PENGUIN_FEATURES, {"probs": probs}),
        })
    path = os.path.join(OUT, "penguins-by-island", "index.json")
    data = json.dumps(index, indent=2) + "\n"
    with open(path, "w") as f:
        f.write(data)
    written.append(("penguins-by-island/index.json", len(data), hashlib.sha256(data.encode()).hexdigest()[:12]))


def flights_delay(written, expected, report):
    seed_everything(3)
    df = usable(load("flights-20k.json"), FLIGHT_FEATURES + ["delay"])
    x = torch.tensor(df[FLIGHT_FEATURES].to_numpy(np.float32))
    y = torch.tensor(df[["delay"]].to_numpy(np.float32))
    net = torch.nn.Sequential(torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Tanh(),
                              torch.nn.Linear(16, 1))
    model = Standardised(net, x.mean(0).numpy(), x.std(0).numpy(), float(y.mean()), float(y.std()))
    fit(model, x, y, torch.nn.MSELoss(), epochs=300, lr=0.01)
    with torch.no_grad():
        pred = model(x).numpy()
    yv = y.numpy()
    rmse = float(np.sqrt(np.mean((pred - yv) ** 2)))
    base = float(np.sqrt(np.mean((yv - yv.mean()) ** 2)))
    report.append(f"flights-delay: training RMSE {rmse:.3f} min (predicting the mean: {base:.3f}), "
                  f"R^2 {1 - rmse ** 2 / base ** 2:.4f} on {len(df)} rows")
    write("flights-delay.onnx", export(model, FLIGHT_FEATURES, "delay"), written)
    expected.append({
        "name": "flights-delay", "file": "flights-delay.onnx", "dataset": "flights-20k.json",
        "features": FLIGHT_FEATURES, "outputs": ["delay"],
        "rows": expected_rows(df, FLIGHT_FEATURES, {"delay": pred}),
    })


# ----------------------------------------------------------- scikit-learn

def const(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.float32), name)


def onnx_model(graph, ml=False):
    opsets = [helper.make_opsetid("", OPSET)]
    if ml:
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    model = helper.make_model(graph, producer_name="mlsteps make-model-fixtures.py", opset_imports=opsets)
    model.ir_version = 8
    return model


def cars_ridge(written, expected, report):
    cars = load("cars.json")
    df = usable(cars, CAR_FEATURES + ["Miles_per_Gallon"])
    x = df[CAR_FEATURES].to_numpy(np.float64)
    y = df["Miles_per_Gallon"].to_numpy(np.float64)
    mean, std = x.mean(0), x.std(0)
    ridge = Ridge(alpha=1.0).fit((x - mean) / std, y)
    pred = ridge.predict((x - mean) / std)
    r2 = ridge.score((x - mean) / std, y)
    report.append(f"cars-mpg-linear: training R^2 {r2:.4f}, RMSE {np.sqrt(np.mean((pred - y) ** 2)):.3f} mpg "
                  f"on {len(df)} rows")
    # (x - mean) / std, then MatMul and Add: the scaler stays a separate
    # step so float32 rounding stays near sklearn's float64 answers.
    graph = helper.make_graph(
        [helper.make_node("Sub", ["x", "mean"], ["centred"]),
         helper.make_node("Div", ["centred", "std"], ["z"]),
         helper.make_node("MatMul", ["z", "coef"], ["zw"]),
         helper.make_node("Add", ["zw", "intercept"], ["mpg"])],
        "cars_mpg_linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", len(CAR_FEATURES)])],
        [helper.make_tensor_value_info("mpg", TensorProto.FLOAT, ["N", 1])],
        initializer=[const("mean", mean), const("std", std),
                     const("coef", ridge.coef_.reshape(-1, 1)), const("intercept", [ridge.intercept_])])
    write("cars-mpg-linear.onnx", with_metadata(onnx_model(graph), CAR_FEATURES), written)
    # Expected: all of cars' rows with features (the target may be null).
    rows = usable(cars, CAR_FEATURES)
    xr = rows[CAR_FEATURES].to_numpy(np.float64)
    expected.append({
        "name": "cars-mpg-linear", "file": "cars-mpg-linear.onnx", "dataset": "cars.json",
        "features": CAR_FEATURES, "outputs": ["mpg"],
        "rows": expected_rows(rows, CAR_FEATURES, {"mpg": ridge.predict((xr - mean) / std).reshape(-1, 1)}),
    })


def below32(t):
    """The largest float32 <= t. sklearn compares float32 features with
    float64 thresholds (x <= t); with this threshold the float32
    comparison answers the same for every float32 x."""
    v = np.float32(t)
    if float(v) > t:
        v = np.nextafter(v, np.float32(-np.inf))
    return float(v)


def tree_ensemble(gb, n_features):
    """Converts a fitted multi-class GradientBoostingClassifier into a
    TreeEnsembleClassifier node: leaf weights are learning_rate * leaf
    value, base_values the initial raw prediction (log class priors), and
    SOFTMAX gives predict_proba."""
    if gb.n_classes_ < 3:
        # Binary boosting has one tree per stage and a logistic link; ORT
        # mishandles some binary ensembles (see DESIGN.md): not needed here.
        raise ValueError("tree_ensemble converts multi-class models only")
    a = {k: [] for k in ("nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_values", "nodes_modes",
                         "nodes_truenodeids", "nodes_falsenodeids", "nodes_hitrates", "nodes_missing_value_tracks_true",
                         "class_treeids", "class_nodeids", "class_ids", "class_weights")}
    tree_id = 0
    for stage in gb.estimators_:
        for k, est in enumerate(stage):
            t = est.tree_
            for node in range(t.node_count):
                a["nodes_treeids"].append(tree_id)
                a["nodes_nodeids"].append(node)
                a["nodes_hitrates"].append(1.0)
                a["nodes_missing_value_tracks_true"].append(0)
                if t.children_left[node] == -1:
                    a["nodes_featureids"].append(0)
                    a["nodes_values"].append(0.0)
                    a["nodes_modes"].append("LEAF")
                    a["nodes_truenodeids"].append(0)
                    a["nodes_falsenodeids"].append(0)
                    a["class_treeids"].append(tree_id)
                    a["class_nodeids"].append(node)
                    a["class_ids"].append(k)
                    a["class_weights"].append(f32(gb.learning_rate * t.value[node, 0, 0]))
                else:
                    a["nodes_featureids"].append(int(t.feature[node]))
                    a["nodes_values"].append(below32(t.threshold[node]))
                    a["nodes_modes"].append("BRANCH_LEQ")
                    a["nodes_truenodeids"].append(int(t.children_left[node]))
                    a["nodes_falsenodeids"].append(int(t.children_right[node]))
            tree_id += 1
    base = gb._raw_predict_init(np.zeros((1, n_features), dtype=np.float32))[0]
    return helper.make_node("TreeEnsembleClassifier", ["x"], ["label", "probabilities"], domain="ai.onnx.ml",
                            classlabels_int64s=list(range(gb.n_classes_)), post_transform="SOFTMAX",
                            base_values=[f32(v) for v in base], **a), a, base


def check_conversion(a, base, x, want):
    """Walks the converted attributes in numpy, as ORT would, and checks
    the probabilities against sklearn's: a conversion bug fails here
    rather than in a Go test far away."""
    n_trees = max(a["nodes_treeids"]) + 1
    nodes = {}
    for i, (tid, nid) in enumerate(zip(a["nodes_treeids"], a["nodes_nodeids"])):
        nodes[(tid, nid)] = i
    leaf = {}
    for tid, nid, k, w in zip(a["class_treeids"], a["class_nodeids"], a["class_ids"], a["class_weights"]):
        leaf[(tid, nid)] = (k, w)
    x32 = x.astype(np.float32)
    for r in range(len(x32)):
        score = np.array(base, dtype=np.float64)
        for tid in range(n_trees):
            nid = 0
            while True:
                i = nodes[(tid, nid)]
                if a["nodes_modes"][i] == "LEAF":
                    k, w = leaf[(tid, nid)]
                    score[k] += w
                    break
                go_true = x32[r, a["nodes_featureids"][i]] <= np.float32(a["nodes_values"][i])
                nid = a["nodes_truenodeids"][i] if go_true else a["nodes_falsenodeids"][i]
        p = np.exp(score - score.max())
        p /= p.sum()
        if np.max(np.abs(p - want[r])) > 1e-5:
            raise AssertionError(f"tree conversion: row {r}: {p} != sklearn's {want[r]}")


def penguins_trees(penguins, written, expected, report):
    df = usable(penguins, PENGUIN_FEATURES)
    x = df[PENGUIN_FEATURES].to_numpy(np.float64)
    y = np.array([SPECIES.index(s) for s in df["Species"]])
    gb = GradientBoostingClassifier(n_estimators=30, max_depth=3, learning_rate=0.1, random_state=0).fit(x, y)
    proba = gb.predict_proba(x)
    label = gb.predict(x)
    report.append(f"penguins-trees: training accuracy {np.mean(label == y):.4f} on {len(df)} rows "
                  f"({gb.n_estimators_} stages x {gb.n_classes_} classes, depth 3)")
    node, attrs, base = tree_ensemble(gb, len(PENGUIN_FEATURES))
    check_conversion(attrs, base, x, proba)
    graph = helper.make_graph(
        [node], "penguins_trees",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", len(PENGUIN_FEATURES)])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", len(SPECIES)])])
    write("penguins-trees.onnx", with_metadata(onnx_model(graph, ml=True), PENGUIN_FEATURES, SPECIES), written)
    expected.append({
        "name": "penguins-trees", "file": "penguins-trees.onnx", "dataset": "penguins.json",
        "features": PENGUIN_FEATURES, "classes": SPECIES, "outputs": ["label", "probabilities"],
        "rows": expected_rows(df, PENGUIN_FEATURES, {"label": label.reshape(-1, 1), "probabilities": proba}),
    })


def dump_expected(models):
    """expected.json with one line per row, so a regenerated file diffs
    row by row."""
    parts = []
    for m in models:
        head = json.dumps({k: v for k, v in m.items() if k != "rows"})
        rows = ",\n".join("   " + json.dumps(r) for r in m["rows"])
        parts.append(f'  {head[:-1]}, "rows": [\n{rows}\n  ]}}')
    body = ",\n".join(parts)
    return f'{{"expected_rows": {EXPECTED_ROWS}, "models": [\n{body}\n]}}\n'


def main():
    if not os.path.exists(os.path.join(DATA, "penguins.json")):
        sys.exit(f"no vega datasets in {DATA}: run `make setup` (or set MLSTEPS_VEGA_DATA)")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    os.makedirs(OUT, exist_ok=True)
    penguins = load("penguins.json")
    written, expected, report = [], [], []
    penguins_mlp(penguins, written, expected, report)
    penguins_trees(penguins, written, expected, report)
    cars_ridge(written, expected, report)
    penguins_by_island(penguins, written, expected, report)
    flights_delay(written, expected, report)
    data = dump_expected(expected)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        f.write(data)
    written.append(("expected.json", len(data), hashlib.sha256(data.encode()).hexdigest()[:12]))
    for line in report:
        print(line)
    total = 0
    for rel, size, digest in written:
        print(f"wrote testdata/models/{rel}: {size} bytes, sha256 {digest}")
        total += size
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
