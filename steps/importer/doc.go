// Package importer is the `import` step: raw files at any blob URL (CSV,
// TSV, a JSON array, JSONL or Parquet, one file or a glob) become a Dataset
// artifact of Parquet parts split into train/eval, as TFX's ExampleGen does.
//
// Rows are assigned to splits by a seeded hash of the --split-key column (or
// of the whole row), so the assignment does not depend on file order or
// batching, rows with the same key land in the same split, and the same
// input, parameters and seed give the same artifact digest.
//
// With --split-by a column's value decides instead, like ExampleGen's
// input split patterns: each split claims value prefixes, a row goes to
// the first split claiming a prefix of its value (as text; timestamps in
// RFC 3339), and rows no split claims are left out and counted in the
// Dataset's unmatched_rows property. A span per year of a date column:
//
//	mlsteps import --source seattle-weather.csv --split-by date --split 'train=2012|2013,serving=2015'
//
//	mlsteps import --source 'file:///data/penguins.json' --out-root file:///tmp/run \
//	    --split train=0.8,eval=0.2 --split-key Island --seed 7
package importer
