// Package report renders data statistics and their anomalies as one
// self-contained HTML page: inline CSS and SVG, nothing fetched from the
// network, so it opens from a blob store, a KFP UI or a mail attachment.
//
// Each split gets a table with a row per feature: its type, the share of
// missing values, headline statistics, an SVG histogram (numeric features)
// or the top values (strings), and, highlighted, the anomalies found.
//
//	html, err := report.HTML(report.Page{Title: "penguins", Statistics: list, Anomalies: anomalies})
//
// # Errors
//
// HTML fails only if the template cannot be executed, which would be a bug.
package report
