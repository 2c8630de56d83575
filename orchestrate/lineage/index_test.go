package lineage_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
	"github.com/mlsteps/mlsteps/orchestrate/lineage"
)

// pgURL is the test database; MLSTEPS_TEST_POSTGRES overrides it.
func pgURL() string {
	if u := os.Getenv("MLSTEPS_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// pgSchema creates a schema of its own on the test database (CI reuses
// the database) and returns a --db URL that uses it; the schema is dropped
// when the test ends.
func pgSchema(t testing.TB) string {
	t.Helper()
	db, err := sql.Open("pgx", pgURL())
	if err == nil {
		err = db.Ping()
	}
	if err != nil {
		testenv.Missing(t, "PostgreSQL at %s is not reachable: %v", pgURL(), err)
	}
	var b [6]byte
	rand.Read(b[:])
	name := "mlsteps_lineage_" + hex.EncodeToString(b[:])
	if _, err := db.Exec(`CREATE SCHEMA ` + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Exec(`DROP SCHEMA ` + name + ` CASCADE`)
		db.Close()
	})
	return pgURL() + "&search_path=" + name
}

func sqliteURL(t testing.TB) string {
	return "sqlite://" + filepath.Join(t.TempDir(), "lineage.db")
}

// TestIndexMatchesBlobWalk: every query gives the same graph from the SQL
// index as from the blob walk, on SQLite and PostgreSQL, and updates are
// incremental.
func TestIndexMatchesBlobWalk(t *testing.T) {
	for _, db := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", sqliteURL}, {"postgres", pgSchema}} {
		t.Run(db.name, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			ix, err := lineage.OpenIndex(ctx, db.url(t))
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close()
			if _, err := lineage.Query(ctx, ix, f.uri["data0"], lineage.Options{}); err == nil {
				t.Error("query of an index never built succeeded")
			}
			st, err := ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			// 6 executions, each with a record and one output sidecar.
			if st.Listed != 12 || st.Read != 12 {
				t.Errorf("first update %+v, want 12 listed and read", st)
			}
			blob := lineage.NewBlobSource(f.store, &f.root)
			for name := range f.uri {
				for _, dir := range []lineage.Direction{lineage.Up, lineage.Down, lineage.Both} {
					want, err := lineage.Query(ctx, blob, f.uri[name], lineage.Options{Direction: dir})
					if err != nil {
						t.Fatal(err)
					}
					got, err := lineage.Query(ctx, ix, f.uri[name], lineage.Options{Direction: dir})
					if err != nil {
						t.Fatal(err)
					}
					if w, g := asJSON(t, want), asJSON(t, got); w != g {
						t.Errorf("%s direction %d: index says\n%s\nblob walk says\n%s", name, dir, g, w)
					}
				}
			}
			// Nothing new: nothing read. One more run: only its two records.
			if st, err = ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{}); err != nil || st.Read != 0 {
				t.Errorf("second update %+v %v, want nothing read", st, err)
			}
			f.run(t, statsSpec(), "stats0b", map[string]string{"examples": "data0"}, map[string]any{"label": "again"})
			if st, err = ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{}); err != nil || st.Read != 2 || st.Listed != 14 {
				t.Errorf("update after one run %+v %v, want 14 listed, 2 read", st, err)
			}
			g, err := lineage.Query(ctx, ix, f.uri["data0"], lineage.Options{Direction: lineage.Down, Depth: 1})
			if err != nil || len(g.Executions) != 3 {
				t.Errorf("data0 downstream after the new run: %v executions, %v", g, err)
			}
			// A deleted artifact leaves the index on the next update.
			p, _ := artifacts.MustParseURI(f.uri["schema1"]).LocalPath()
			if err := os.RemoveAll(p); err != nil {
				t.Fatal(err)
			}
			if st, err = ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{}); err != nil || st.Removed != 1 {
				t.Errorf("update after a delete %+v %v, want 1 removed", st, err)
			}
			if sc, err := ix.Sidecar(ctx, f.uri["schema1"]); err != nil || sc != nil {
				t.Errorf("deleted artifact still indexed: %v %v", sc, err)
			}
		})
	}
}

func asJSON(t *testing.T, v any) string {
	data, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestPostgresConcurrentIndexers runs two indexers at once on one
// database: the counts are those of one.
func TestPostgresConcurrentIndexers(t *testing.T) {
	url := pgSchema(t)
	f := newFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	stats := make([]lineage.UpdateStats, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ix, err := lineage.OpenIndex(ctx, url)
			if err != nil {
				errs[i] = err
				return
			}
			defer ix.Close()
			// Small batches interleave the two as much as possible.
			stats[i], errs[i] = ix.Update(ctx, f.store, f.root, lineage.UpdateOptions{BatchSize: 1})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if stats[0].Read+stats[1].Read != 12 {
		t.Errorf("indexers read %d and %d records; together they should read the 12 once", stats[0].Read, stats[1].Read)
	}
	ix, err := lineage.OpenIndex(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	a, e, edges, err := ix.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 6 artifacts, 6 executions; edges: 6 outputs + inputs (stats 1 each, schema 2 each) = 12.
	if a != 6 || e != 6 || edges != 12 {
		t.Errorf("counts %d artifacts, %d executions, %d edges; want 6, 6, 12", a, e, edges)
	}
}

func TestParseDB(t *testing.T) {
	tests := []struct {
		in, driver string
		ok         bool
	}{
		{"sqlite:///tmp/x.db", "sqlite", true},
		{"sqlite://rel.db", "sqlite", true},
		{"sqlite://", "", false},
		{"sqlite:///x.db?mode=ro", "", false},
		{"postgres://postgres@127.0.0.1:5432/test", "pgx", true},
		{"postgresql://u:p@h/db", "pgx", true},
		{"mysql://h/db", "", false},
		{"/tmp/x.db", "", false},
	}
	for _, tt := range tests {
		driver, _, err := lineage.ParseDB(tt.in)
		if (err == nil) != tt.ok || driver != tt.driver {
			t.Errorf("ParseDB(%q) = %q, %v; want %q, ok %v", tt.in, driver, err, tt.driver, tt.ok)
		}
	}
}

func FuzzParseDB(f *testing.F) {
	for _, s := range []string{"sqlite:///tmp/x.db", "postgres://u@h:5432/db?sslmode=disable", "sqlite://a?b", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		driver, dsn, err := lineage.ParseDB(raw)
		if err != nil {
			return
		}
		if driver != "sqlite" && driver != "pgx" || dsn == "" {
			t.Errorf("ParseDB(%q) = %q, %q", raw, driver, dsn)
		}
	})
}

func pgReachable() bool {
	db, err := sql.Open("pgx", pgURL())
	if err != nil {
		return false
	}
	defer db.Close()
	return db.Ping() == nil
}
