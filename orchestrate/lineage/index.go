package lineage

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	// The two SQL drivers: pure-Go SQLite (embedded) and pgx (shared).
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Index is a SQL index of the sidecars and execution records below one or
// more roots, in SQLite (embedded) or PostgreSQL (shared). It is never the
// source of truth: drop it and Update rebuilds it from blob storage. It
// implements Source, so queries run on it exactly as on the blob walk.
type Index struct {
	db       *sql.DB
	postgres bool
}

// ParseDB checks a --db URL and returns the database/sql driver name and
// data source name: sqlite:///abs/path.db or sqlite://rel/path.db for
// SQLite, postgres://… or postgresql://… for PostgreSQL (passed to pgx as
// is, so search_path and the other connection parameters work).
func ParseDB(raw string) (driver, dsn string, err error) {
	switch {
	case strings.HasPrefix(raw, "sqlite://"):
		p := strings.TrimPrefix(raw, "sqlite://")
		if p == "" || strings.ContainsAny(p, "?#\x00") {
			return "", "", fmt.Errorf("%w: --db %q: want sqlite:///path/to/index.db (a file path, no query)", artifacts.ErrInvalid, raw)
		}
		// WAL lets queries read while an indexer writes; immediate
		// transactions make concurrent writers wait instead of failing.
		return "sqlite", "file:" + p + "?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_txlock=immediate", nil
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		if strings.ContainsRune(raw, 0) {
			return "", "", fmt.Errorf("%w: --db: NUL in URL", artifacts.ErrInvalid)
		}
		return "pgx", raw, nil
	}
	return "", "", fmt.Errorf("%w: --db %q: want sqlite:///path.db or postgres://user@host:port/db", artifacts.ErrInvalid, artifacts.Redact(raw))
}

// OpenIndex opens (and creates, for SQLite) the index at a --db URL. Its
// tables are created by the first Update.
func OpenIndex(ctx context.Context, dbURL string) (*Index, error) {
	driver, dsn, err := ParseDB(dbURL)
	if err != nil {
		return nil, err
	}
	if driver == "sqlite" {
		// SQLite creates the file but not its folder.
		path := strings.TrimPrefix(dbURL, "sqlite://")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("open index %s: %w", dbURL, err)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", artifacts.Redact(dbURL), err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open index %s: %w", artifacts.Redact(dbURL), err)
	}
	if driver == "sqlite" {
		// One connection: SQLite serialises writers anyway, and a single
		// connection keeps the pragmas and the transaction lock simple.
		db.SetMaxOpenConns(1)
	}
	return &Index{db: db, postgres: driver == "pgx"}, nil
}

// Close closes the database.
func (ix *Index) Close() error { return ix.db.Close() }

var schema = []string{
	`CREATE TABLE IF NOT EXISTS lineage_sources (key TEXT PRIMARY KEY, version TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS lineage_artifacts (key TEXT PRIMARY KEY, uri TEXT NOT NULL, digest TEXT NOT NULL, type TEXT NOT NULL, producer TEXT NOT NULL, sidecar TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS lineage_artifacts_uri ON lineage_artifacts (uri)`,
	`CREATE TABLE IF NOT EXISTS lineage_executions (key TEXT PRIMARY KEY, id TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL, record TEXT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS lineage_executions_id ON lineage_executions (id)`,
	`CREATE TABLE IF NOT EXISTS lineage_edges (key TEXT NOT NULL, kind TEXT NOT NULL, pos INTEGER NOT NULL, exec_id TEXT NOT NULL, name TEXT NOT NULL, uri TEXT NOT NULL, digest TEXT NOT NULL, PRIMARY KEY (key, kind, pos))`,
	`CREATE INDEX IF NOT EXISTS lineage_edges_artifact ON lineage_edges (uri, digest, kind)`,
}

// rebind turns ? placeholders into PostgreSQL's $n.
func (ix *Index) rebind(q string) string {
	if !ix.postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// UpdateStats says what one Update did.
type UpdateStats struct {
	Listed  int // sidecars and execution records below the root
	Read    int // of those, new or changed since the last pass
	Removed int // indexed records no longer in the store
}

// UpdateOptions shape Update; the zero value is the default.
type UpdateOptions struct {
	Logger *slog.Logger // nil: discard
	// BatchSize is the number of records written per transaction (0: 500).
	BatchSize int
}

// Update brings the index up to date with every sidecar and execution
// record below root: it reads only records that are new or changed since
// the last pass (by blob key and version) and drops those that are gone.
// Several Updates may run at once on one database: on PostgreSQL they take
// turns through an advisory lock, on SQLite through its write lock, and
// every write replaces the rows of one record, so nothing is counted twice.
func (ix *Index) Update(ctx context.Context, store *artifacts.Store, root artifacts.URI, opts UpdateOptions) (UpdateStats, error) {
	var st UpdateStats
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	conn, err := ix.db.Conn(ctx)
	if err != nil {
		return st, fmt.Errorf("index: %w", err)
	}
	defer conn.Close()
	if ix.postgres {
		// Session lock, per schema: concurrent indexers of one index take
		// turns; the second finds the work done and reads nothing.
		const lock = `SELECT pg_advisory_lock(hashtext(current_schema() || '.mlsteps.lineage'))`
		if _, err := conn.ExecContext(ctx, lock); err != nil {
			return st, fmt.Errorf("index: lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(hashtext(current_schema() || '.mlsteps.lineage'))`)
	}
	if err := ix.createSchema(ctx, conn); err != nil {
		return st, err
	}
	known := map[string]string{}
	rows, err := conn.QueryContext(ctx, `SELECT key, version FROM lineage_sources`)
	if err != nil {
		return st, fmt.Errorf("index: read sources: %w", err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			rows.Close()
			return st, fmt.Errorf("index: read sources: %w", err)
		}
		known[k] = v
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return st, fmt.Errorf("index: read sources: %w", err)
	}

	var changed []artifacts.Entry
	seen := map[string]bool{}
	err = store.Walk(ctx, root, func(e artifacts.Entry) error {
		if !e.IsSidecar() && !e.IsExecutionRecord() {
			return nil
		}
		st.Listed++
		k := artifacts.Redact(e.URI.String())
		seen[k] = true
		if known[k] != e.Version() {
			changed = append(changed, e)
		}
		return nil
	})
	if err != nil {
		return st, err
	}
	var gone []string
	for k := range known {
		if !seen[k] && below(k, root) {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	logger.Info("lineage index: listed", "root", artifacts.Redact(root.String()), "records", st.Listed, "new_or_changed", len(changed), "gone", len(gone))

	for start := 0; start < len(changed); start += opts.BatchSize {
		batch := changed[start:min(start+opts.BatchSize, len(changed))]
		recs, err := readRecords(ctx, store, batch)
		if err != nil {
			return st, err
		}
		var stale []string
		for _, e := range batch {
			if k := artifacts.Redact(e.URI.String()); known[k] != "" {
				stale = append(stale, k)
			}
		}
		if err := ix.write(ctx, conn, recs, stale); err != nil {
			return st, err
		}
		st.Read += len(batch)
	}
	for start := 0; start < len(gone); start += opts.BatchSize {
		if err := ix.write(ctx, conn, nil, gone[start:min(start+opts.BatchSize, len(gone))]); err != nil {
			return st, err
		}
	}
	st.Removed = len(gone)
	if ix.postgres && st.Read+st.Removed > 0 {
		// Fresh statistics, so the planner uses the indexes at once.
		if _, err := conn.ExecContext(ctx, `ANALYZE lineage_sources, lineage_artifacts, lineage_executions, lineage_edges`); err != nil {
			return st, fmt.Errorf("index: analyze: %w", err)
		}
	}
	return st, nil
}

func (ix *Index) createSchema(ctx context.Context, conn *sql.Conn) error {
	for _, stmt := range schema {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("index: create tables: %w", err)
		}
	}
	return nil
}

var tables = []string{"lineage_sources", "lineage_artifacts", "lineage_executions", "lineage_edges"}

// write replaces the rows of recs and deletes those of stale (keys indexed
// before: records gone or changed), in one transaction. Rows go in
// several to a statement; a round trip per row is what makes indexing a
// large store slow on a networked database.
func (ix *Index) write(ctx context.Context, conn *sql.Conn, recs []record, stale []string) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("index: begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	for _, t := range tables {
		for start := 0; start < len(stale); start += rowsPerStatement {
			keys := stale[start:min(start+rowsPerStatement, len(stale))]
			q := `DELETE FROM ` + t + ` WHERE key IN (?` + strings.Repeat(", ?", len(keys)-1) + `)`
			if _, err := tx.ExecContext(ctx, ix.rebind(q), toAny(keys)...); err != nil {
				return fmt.Errorf("index: delete from %s: %w", t, err)
			}
		}
	}
	var sources, arts, execs, edges [][]any
	for _, r := range recs {
		key := artifacts.Redact(r.entry.URI.String())
		sources = append(sources, []any{key, r.entry.Version()})
		switch {
		case r.sidecar != nil:
			producer := ""
			if r.sidecar.Producer != nil {
				producer = r.sidecar.Producer.ExecutionID
			}
			arts = append(arts, []any{key, r.location, r.sidecar.Digest, string(r.sidecar.Type), producer, string(r.raw)})
		case r.execution != nil:
			e := r.execution
			execs = append(execs, []any{key, e.ID, e.Step, e.Status, string(r.raw)})
			for i, l := range e.Inputs {
				edges = append(edges, []any{key, "input", i, e.ID, l.Name, l.URI, l.Digest})
			}
			for i, l := range e.Outputs {
				edges = append(edges, []any{key, "output", i, e.ID, l.Name, l.URI, l.Digest})
			}
		}
	}
	for _, ins := range []struct {
		table, cols, conflict string
		rows                  [][]any
	}{
		{"lineage_sources", "key, version", "(key) DO UPDATE SET version = excluded.version", sources},
		{"lineage_artifacts", "key, uri, digest, type, producer, sidecar", "(key) DO NOTHING", arts},
		{"lineage_executions", "key, id, step, status, record", "(key) DO NOTHING", execs},
		{"lineage_edges", "key, kind, pos, exec_id, name, uri, digest", "(key, kind, pos) DO NOTHING", edges},
	} {
		if err := ix.insert(ctx, tx, ins.table, ins.cols, ins.conflict, ins.rows); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: commit: %w", err)
	}
	return nil
}

const rowsPerStatement = 100

// insert writes rows, rowsPerStatement to a statement. ON CONFLICT keeps
// a racing writer's identical row instead of failing or doubling it.
func (ix *Index) insert(ctx context.Context, tx *sql.Tx, table, cols, conflict string, rows [][]any) error {
	for start := 0; start < len(rows); start += rowsPerStatement {
		chunk := rows[start:min(start+rowsPerStatement, len(rows))]
		tuple := "(?" + strings.Repeat(", ?", len(chunk[0])-1) + ")"
		q := `INSERT INTO ` + table + ` (` + cols + `) VALUES ` + tuple + strings.Repeat(", "+tuple, len(chunk)-1) + ` ON CONFLICT ` + conflict
		var args []any
		for _, r := range chunk {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, ix.rebind(q), args...); err != nil {
			return fmt.Errorf("index: insert into %s: %w", table, err)
		}
	}
	return nil
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// Counts returns the number of artifacts, executions and edges indexed.
func (ix *Index) Counts(ctx context.Context) (artifactsN, executions, edges int, err error) {
	for _, c := range []struct {
		table string
		n     *int
	}{{"lineage_artifacts", &artifactsN}, {"lineage_executions", &executions}, {"lineage_edges", &edges}} {
		if err := ix.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+c.table).Scan(c.n); err != nil {
			return 0, 0, 0, ix.queryErr(err)
		}
	}
	return artifactsN, executions, edges, nil
}

// queryErr explains the usual first error: an index never built.
func (ix *Index) queryErr(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "no such table") || strings.Contains(msg, "does not exist") {
		return fmt.Errorf("lineage index is empty: build it with `mlsteps lineage index --root URI --db URL` (%w)", err)
	}
	return fmt.Errorf("lineage index: %w", err)
}

// Sidecar implements Source.
func (ix *Index) Sidecar(ctx context.Context, uri string) (*artifacts.Sidecar, error) {
	var raw string
	err := ix.db.QueryRowContext(ctx, ix.rebind(`SELECT sidecar FROM lineage_artifacts WHERE uri = ?`), uri).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, ix.queryErr(err)
	}
	var sc artifacts.Sidecar
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		return nil, fmt.Errorf("lineage index: sidecar of %s: %w", uri, err)
	}
	return &sc, nil
}

// Execution implements Source.
func (ix *Index) Execution(ctx context.Context, id string) (*artifacts.Execution, error) {
	var raw string
	err := ix.db.QueryRowContext(ctx, ix.rebind(`SELECT record FROM lineage_executions WHERE id = ? ORDER BY key LIMIT 1`), id).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, ix.queryErr(err)
	}
	var e artifacts.Execution
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return nil, fmt.Errorf("lineage index: execution %s: %w", id, err)
	}
	return &e, nil
}

// Consumers implements Source.
func (ix *Index) Consumers(ctx context.Context, uri, digest string) ([]string, error) {
	return ix.edgeExecs(ctx, uri, digest, "input")
}

// Producers implements Source.
func (ix *Index) Producers(ctx context.Context, uri, digest string) ([]string, error) {
	return ix.edgeExecs(ctx, uri, digest, "output")
}

func (ix *Index) edgeExecs(ctx context.Context, uri, digest, kind string) ([]string, error) {
	rows, err := ix.db.QueryContext(ctx, ix.rebind(`SELECT DISTINCT exec_id FROM lineage_edges WHERE uri = ? AND digest = ? AND kind = ?`), uri, digest, kind)
	if err != nil {
		return nil, ix.queryErr(err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, ix.queryErr(err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, ix.queryErr(err)
	}
	// Sorted here, not by the database, whose collation may not be bytewise.
	slices.Sort(ids)
	return ids, nil
}
