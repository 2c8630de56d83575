// Package validation infers a schema from statistics and checks
// statistics against a schema, in TensorFlow Data Validation's formats:
// Schema and Anomalies printed as protobuf JSON with TFDV's snake_case
// field names. It also measures drift (against an earlier span's
// statistics) and training/serving skew (against serving statistics).
//
//	schema := validation.InferSchema(&trainStats, validation.InferOptions{})
//	an := validation.NewAnomalies()
//	an.Check(&evalStats, schema, validation.Compare{Baseline: &lastWeek})
//	if an.Count(validation.SeverityError) > 0 { ... }
//
// A schema is meant to be edited by people: ParseSchema refuses unknown
// fields, so a typo ("min_fractoin") is an error naming the field rather
// than a check silently dropped.
//
// # Anomalies found
//
// A column in the schema but not in the data (SCHEMA_MISSING_COLUMN) or
// the reverse (SCHEMA_NEW_COLUMN, a warning); a changed type
// (UNEXPECTED_DATA_TYPE); a column that is entirely null
// (FEATURE_TYPE_NOT_PRESENT); presence below presence.min_fraction or
// min_count; string values outside string_domain, with their share
// (ENUM_TYPE_UNEXPECTED_STRING_VALUES); numbers outside int_domain or
// float_domain bounds; an empty dataset (DATASET_LOW_NUM_EXAMPLES); and,
// when comparators are set, an L-infinity distance (categorical features)
// or a Jensen-Shannon divergence (numeric features, over re-bucketed
// STANDARD histograms, log base 2) above the threshold. All but new columns
// and missing comparison data are errors.
//
// # Errors
//
// ParseSchema and ParseStatistics return a *FieldError naming the file and
// the field for unknown fields, values of the wrong JSON type and schema
// entries that do not make sense (an unknown type, a fraction outside
// [0, 1], a numeric domain on a string feature).
package validation
