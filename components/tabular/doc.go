// Package tabular reads raw tabular files — CSV, TSV, a JSON array of
// objects, JSON Lines and Parquet — as a stream of Apache Arrow record
// batches, inferring column types for the text formats.
//
// Readers stream: memory is bounded by the inference sample plus one batch,
// whatever the size of the input.
//
//	f, err := os.Open("penguins.csv")
//	if err != nil { ... }
//	defer f.Close()
//	format, err := tabular.FormatFromName(f.Name())
//	if err != nil { ... }
//	rd, err := tabular.NewReader(ctx, f, f.Name(), format, tabular.Options{})
//	if err != nil { ... }
//	defer rd.Close()
//	for {
//		rec, err := rd.Next()
//		if err == io.EOF {
//			break
//		}
//		if err != nil { ... }
//		use(rec)
//		rec.Release()
//	}
//
// # Type inference
//
// A CSV, TSV, JSON or JSONL reader first reads Options.InferRows rows
// (10000 by default; negative means all of them), infers one type per
// column, then hands out those buffered rows and goes on streaming. Each
// column gets the narrowest type that fits every non-null sampled value:
//
//   - bool: "true" or "false" in any case; JSON true and false.
//   - int64: base-10 integers as strconv.ParseInt reads them; JSON numbers
//     written without a fraction or exponent that fit int64. A CSV value
//     with a redundant leading zero ("00501", "-07") rules out int64 and
//     float64 for its column: it is a code (ZIP, id), kept as text.
//   - float64: anything strconv.ParseFloat reads, including "NaN" and "Inf";
//     a column mixing ints and floats is float64.
//   - timestamp: &arrow.TimestampType{Unit: arrow.Microsecond}, with no time
//     zone (unlike arrow.FixedWidthTypes.Timestamp_us, which says UTC), when
//     every value is ISO 8601:
//     "2006-01-02", "2006-01-02T15:04:05" or "2006-01-02 15:04:05", with
//     optional fractional seconds and an optional "Z" or ±hh:mm offset,
//     which is converted to UTC.
//   - string: anything else, a column mixing bools and numbers, and a column
//     whose sampled values are all null.
//
// Every inferred column is nullable. CSV cells equal to one of
// Options.NullValues ("" and "NA" by default) are null in every column.
// NullValues do not apply to JSON, where null and a missing key are null.
// JSON strings are never read as numbers or booleans, only as timestamps.
//
// A value after the sample that does not fit its column's type is a
// *ParseError, as in Arrow's and Polars' CSV readers: raise InferRows, or
// run InferSchema with InferRows -1 first and pass its result as
// Options.Schema, which turns inference off. A schema may also use the
// narrower types int8-32, uint8-64, float32, large_string, date32 and
// timestamps of any unit.
//
// # CSV and TSV
//
// The first row is the header. An empty header cell names its column
// "column_<n>" (1-based); names are kept exactly, spaces and parentheses
// included; a repeated name is an error. Every row must have as many fields
// as the header. A UTF-8 byte order mark before the header is dropped.
//
// # JSON and JSONL
//
// Columns are the keys of the sampled objects, in first-seen order. A key
// first seen after the sample is an error. A nested object or array is kept
// as its compact JSON text in a string column; a number or bool in a string
// column keeps its literal text. With Options.Schema, a key not in the
// schema is an error and a schema column no object has reads as nulls.
//
// # Parquet
//
// Parquet files keep the schema stored in them and stream in batches of
// Options.BatchSize rows, which may span row groups; the reader needs an
// io.ReaderAt and io.Seeker.
//
// # Errors
//
// Every error about the data itself is a *ParseError carrying the file
// name, the 1-based line (where the row or JSON array element starts), the
// column and the value where they apply; errors inside a JSON array also
// name the element, counting from 1:
//
//	penguins.csv:12: column "Body Mass (g)": value "abc" is not int64 (type inferred from the first 10000 rows; set a larger InferRows or a schema)
//	penguins.csv:40: row has 6 fields, header has 7: wrong number of fields
//	cars.json:3: element 2 is not an object
//	cars.json:717: element 66, column "Displacement": value "97.5" is not int64 (type inferred from the first 5 rows; set a larger InferRows or a schema)
//
// Errors wrap their cause, so errors.Is(err, csv.ErrFieldCount) and
// errors.As(err, new(*tabular.ParseError)) work. Errors from the underlying
// io.Reader (wrapped with the file name), bad Options and a done context
// (ctx.Err() itself) are not ParseErrors. Once Next has returned an error other than io.EOF it
// returns that error again.
//
// The text readers sample, and so may return a ParseError, before
// NewReader returns.
package tabular
