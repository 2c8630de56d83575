// Package stats computes per-feature statistics of tabular data in one
// streaming pass over Arrow record batches, in TensorFlow Data Validation's
// format: a DatasetFeatureStatisticsList printed as protobuf JSON with
// TFDV's snake_case field names, which TFDV (json_format.Parse) and Facets
// load.
//
// State is mergeable, so shards (row groups, files) can be accumulated in
// parallel and merged:
//
//	acc := stats.New(stats.Options{})
//	for rec := range batches {
//		if err := acc.Add(rec); err != nil { ... }
//	}
//	other := stats.New(stats.Options{}) // another shard, maybe another goroutine
//	...
//	err := acc.Merge(other)
//	ds, err := acc.Result("train") // one DatasetFeatureStatistics
//
// Merge combines the same columns of different rows; Join combines
// Accumulators that summarised different columns of the same rows (one
// goroutine per column). DatasetFeatureStatisticsList.IndentedJSON writes
// the list as json.MarshalIndent would, several times faster.
//
// MarshalBinary encodes an Accumulator's whole state (a compact, versioned
// binary form, documented in encode.go) and UnmarshalBinary reads it back,
// so states computed in other processes or machines merge too:
//
//	state, err := shard.MarshalBinary() // in each worker
//	var back stats.Accumulator
//	err = back.UnmarshalBinary(state)   // in the merging process
//	err = whole.Merge(&back)
//
// # What is computed, and how exactly
//
// Integers and booleans are INT features, floats FLOAT, everything else
// STRING (timestamps as ISO-8601 text, a date alone at midnight UTC).
//
//   - Exact, whatever the sharding: num_examples, num_non_missing,
//     num_missing (null, and NaN for floats, as pandas), min, max,
//     num_zeros, mean and std_dev. std_dev is the population standard
//     deviation (ddof=0, as TFDV; pandas' default is ddof=1). Each batch's
//     moments are taken in two passes and kept; Result folds them with Chan
//     et al.'s pairwise formulas in a canonical order (sorted by value), so
//     mean and std_dev are the same bits however the batches were split
//     among Accumulators and merged, and agree with pandas to about 1e-12
//     relative.
//   - String features: unique, top_values (20), rank_histogram (1,000
//     values) and avg_length (in UTF-8 bytes) are exact while a feature has
//     at most Options.UniqueCap (100,000) distinct values. Values are
//     numbered by an open-addressing hash table whose keys live in one
//     pointer-free arena; an Arrow dictionary array costs an index count
//     per row and one lookup per distinct entry. Past the cap,
//     unique is an HLL estimate (Apache DataSketches, lg_k 12: about 1.6%
//     relative standard error) and values first seen after the cap are not
//     counted one by one, so top values may miss late heavy hitters. Which
//     values those are depends on the order rows were seen and states
//     merged: past the cap, top values and the rank histogram (not the
//     counts or avg_length) may differ between shardings, and unique by
//     the sketch's error.
//   - median, the QUANTILES histogram (deciles) and the STANDARD histogram
//     (10 equal-width buckets between min and max) come from a DDSketch
//     (DataDog sketches-go, cubically interpolated mapping: the same
//     guarantee as the logarithmic one without a logarithm per value)
//     with relative accuracy 0.005: a returned
//     quantile q is within 0.5% (relative) of a value whose rank is q·(n-1),
//     and a STANDARD bucket count may include values within 0.5% of its
//     edges. DDSketch merges by adding bucket counts, so it is exact under
//     merging and deterministic.
//
// Merging shards in a fixed order gives byte-identical results; while
// string features stay under the cap, so does merging them in any order
// or split any way, as long as each batch is the same.
//
// # Errors
//
// Add fails when a column changes kind between batches (numbers in one,
// strings in another), has an unsupported numeric type, or is a dictionary
// array with an index outside its dictionary; Merge fails on states of
// other Options; Join fails on Accumulators of different row counts or a
// column both have; UnmarshalBinary fails on a damaged, truncated or
// foreign encoding (never panics); Result fails only if a sketch does,
// which would be a bug.
package stats
