#!/usr/bin/python3
"""Reference statistics computed with pandas, for stats' tests.

Usage: /usr/bin/python3 pandas_stats.py FILE

Reads a vega CSV (null tokens "" and "NA", as mlsteps import) or a JSON
array of objects and prints, per column, what components/stats must match:
counts, missing, mean, population std (ddof=0), min, max, zeros, the lower
and higher order statistics around each decile (the sketch's answer must
lie between them, widened by its relative accuracy), and for strings the
distinct count, the 20 most frequent values (ties by value) and the mean
UTF-8 length in bytes.
"""
import json
import sys

import pandas as pd

path = sys.argv[1]
if path.endswith(".csv"):
    df = pd.read_csv(path, keep_default_na=False, na_values=["", "NA"])
else:
    with open(path) as f:
        df = pd.DataFrame(json.load(f))

out = {}
for name in df.columns:
    s = df[name]
    col = {"count": int(s.count()), "missing": int(s.isna().sum())}
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        col["kind"] = "num"
        if col["count"] > 0:
            col.update(mean=float(s.mean()), std=float(s.std(ddof=0)), min=float(s.min()),
                       max=float(s.max()), zeros=int((s == 0).sum()))
            qs = [i / 10 for i in range(1, 10)]
            col["quantiles"] = {str(q): [float(s.quantile(q, interpolation="lower")),
                                         float(s.quantile(q, interpolation="higher"))] for q in qs}
    else:
        col["kind"] = "str"
        v = s.dropna().astype(str)
        counts = v.value_counts()
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:20]
        col.update(unique=int(v.nunique()), top=[[k, int(c)] for k, c in top],
                   avg_len=float(v.map(lambda x: len(x.encode("utf-8"))).mean()) if len(v) else 0.0)
    out[name] = col
json.dump(out, sys.stdout)
