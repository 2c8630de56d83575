#!/usr/bin/env python3
"""A small PyTorch MLP trainer for `mlsteps train --trainer-command`.

It reads the split the step exports as CSV (MLSTEPS_TRAIN_CSV and, when
there is one, MLSTEPS_EVAL_CSV), trains a multilayer perceptron on the
columns listed in MLSTEPS_FEATURES to predict MLSTEPS_LABEL (a classifier
when MLSTEPS_CLASSES lists classes, a regressor otherwise), and exports
$MLSTEPS_MODEL_DIR/model.onnx: opset 17, input "x" float [N, features] with
a dynamic batch axis, output "probabilities" [N, classes] or "prediction"
[N, 1]. Standardisation and mean imputation of missing values are part of
the exported graph, so it runs on the step's feature columns as they are.

Hyper-parameters come from the command line, overridden by MLSTEPS_HPARAMS
(a JSON object with any of epochs, hidden, lr, weight_decay); the seed from
MLSTEPS_SEED, so a run is repeatable.
"""
import argparse
import csv
import json
import math
import os
import sys

import numpy as np
import onnx
import torch
from torch import nn


def read_csv(path, features, label, classes):
    """Returns X (float32, NaN for empty cells) and y (class index or value)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    cols = [header.index(c) for c in features]
    li = header.index(label)
    x = np.array([[float(r[c]) if r[c] != "" else math.nan for c in cols] for r in rows], dtype=np.float32)
    if classes:
        index = {c: i for i, c in enumerate(classes)}
        keep = [i for i, r in enumerate(rows) if r[li] in index]
        y = np.array([index[rows[i][li]] for i in keep], dtype=np.int64)
        return x[keep], y
    return x, np.array([float(r[li]) for r in rows], dtype=np.float32)


class MLP(nn.Module):
    """Imputes, standardises, then two hidden ReLU layers."""

    def __init__(self, mean, std, inputs, hidden, outputs, classify):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))
        self.net = nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, outputs))
        self.classify = classify

    def forward(self, x):
        x = torch.where(torch.isnan(x), self.mean, x)
        out = self.net((x - self.mean) / self.std)
        return torch.softmax(out, dim=1) if self.classify and not self.training else out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    args = p.parse_args()
    hp = json.loads(os.environ.get("MLSTEPS_HPARAMS") or "{}")
    epochs, hidden = int(hp.get("epochs", args.epochs)), int(hp.get("hidden", args.hidden))
    lr, wd = float(hp.get("lr", args.lr)), float(hp.get("weight_decay", args.weight_decay))
    torch.manual_seed(int(os.environ.get("MLSTEPS_SEED", "0")))
    torch.use_deterministic_algorithms(True)

    features = json.loads(os.environ["MLSTEPS_FEATURES"])
    label = os.environ["MLSTEPS_LABEL"]
    classes = json.loads(os.environ.get("MLSTEPS_CLASSES") or "[]")
    x, y = read_csv(os.environ["MLSTEPS_TRAIN_CSV"], features, label, classes)
    mean = np.nan_to_num(np.nanmean(x, axis=0)).astype(np.float32)
    std = np.nan_to_num(np.nanstd(x, axis=0), nan=1.0).astype(np.float32)
    std[std == 0] = 1.0

    model = MLP(mean, std, len(features), hidden, len(classes) or 1, bool(classes))
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    loss_fn = nn.CrossEntropyLoss() if classes else nn.MSELoss()
    tx = torch.from_numpy(x)
    ty = torch.from_numpy(y) if classes else torch.from_numpy(y).reshape(-1, 1)
    model.train()
    for epoch in range(epochs):
        opt.zero_grad()
        loss = loss_fn(model(tx), ty)
        loss.backward()
        opt.step()
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs - 1:
            print(f"epoch {epoch + 1}/{epochs}: train loss {loss.item():.4f}", flush=True)
    model.eval()

    eval_csv = os.environ.get("MLSTEPS_EVAL_CSV")
    if eval_csv:
        ex, ey = read_csv(eval_csv, features, label, classes)
        with torch.no_grad():
            out = model(torch.from_numpy(ex)).numpy()
        if classes:
            print(f"eval accuracy {float((out.argmax(1) == ey).mean()):.4f} on {len(ey)} rows", flush=True)
        else:
            print(f"eval RMSE {float(np.sqrt(((out[:, 0] - ey) ** 2).mean())):.4f} on {len(ey)} rows", flush=True)

    out_name = "probabilities" if classes else "prediction"
    path = os.path.join(os.environ["MLSTEPS_MODEL_DIR"], "model.onnx")
    torch.onnx.export(model, torch.zeros(1, len(features)), path, input_names=["x"], output_names=[out_name],
                      dynamic_axes={"x": {0: "N"}, out_name: {0: "N"}}, opset_version=17)
    m = onnx.load(path)
    for key, value in (("mlsteps.features", features), ("mlsteps.classes", classes)):
        if value:
            entry = m.metadata_props.add()
            entry.key, entry.value = key, json.dumps(value)
    onnx.save(m, path)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
