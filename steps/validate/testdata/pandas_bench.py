#!/usr/bin/python3
"""pandas computing the statistics `mlsteps validate` computes, timed.

Usage: /usr/bin/python3 pandas_bench.py FILE.csv [STRING_COLUMN...]

Columns named after the file are read as strings (as mlsteps import keeps
integers with leading zeros, such as ZIP codes).

Prints JSON: rows, seconds to load the CSV, seconds for the statistics
(describe() of every column, value_counts() of every string column and the
deciles of every numeric one) and the process's peak RSS in MiB.
"""
import json
import resource
import sys
import time

import pandas as pd

path = sys.argv[1]
t0 = time.perf_counter()
df = pd.read_csv(path, keep_default_na=False, na_values=["", "NA"], dtype={c: str for c in sys.argv[2:]})
t1 = time.perf_counter()
desc = df.describe(include="all")
counts = {c: df[c].value_counts() for c in df.columns if df[c].dtype == object}
num = df.select_dtypes("number")
quantiles = num.quantile([i / 10 for i in range(11)])
t2 = time.perf_counter()
json.dump({
    "rows": len(df),
    "load_s": t1 - t0,
    "stats_s": t2 - t1,
    "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "unique": {c: len(v) for c, v in counts.items()},
}, sys.stdout)
