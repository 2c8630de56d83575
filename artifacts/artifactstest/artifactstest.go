// Package artifactstest is the conformance suite every storage backend of
// package artifacts runs unchanged: mem, file and a real S3-compatible
// server. A backend's test is a few lines:
//
//	func TestMem(t *testing.T) {
//		artifactstest.Run(t, func(t *testing.T) artifacts.URI {
//			return artifacts.MustParseURI("mem://conformance/" + t.Name())
//		})
//	}
package artifactstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mlsteps/mlsteps/artifacts"
)

// NewRoot returns an empty prefix, unique to the (sub)test, on the backend.
type NewRoot func(t *testing.T) artifacts.URI

// Run runs every conformance test against the backend.
func Run(t *testing.T, newRoot NewRoot) {
	tests := []struct {
		name string
		fn   func(*testing.T, *artifacts.Store, artifacts.URI)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFoundAndNotCommitted", testNotFoundAndNotCommitted},
		{"Immutable", testImmutable},
		{"WrongType", testWrongType},
		{"BadFileNames", testBadFileNames},
		{"TamperedPayload", testTampered},
		{"LargePayload", testLargePayload},
		{"CancelledWrite", testCancelledWrite},
		{"AbortLeavesNothing", testAbort},
		{"DatasetRoundTrip", testDataset},
		{"Glob", testGlob},
		{"ExecutionRecord", testExecution},
		{"Copy", testCopy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := artifacts.NewStore()
			t.Cleanup(func() { store.Close() })
			tc.fn(t, store, newRoot(t))
		})
	}
}

func create(t *testing.T, s *artifacts.Store, u artifacts.URI, typ artifacts.Type) *artifacts.Writer {
	t.Helper()
	w, err := s.Create(context.Background(), u, typ, u.Base())
	if err != nil {
		t.Fatalf("Create(%s): %v", u, err)
	}
	return w
}

func testRoundTrip(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	u := root.Join("stats")
	w := create(t, s, u, artifacts.TypeStatistics)
	files := map[string][]byte{
		"statistics.json":     []byte(`{"datasets":[]}`),
		"report.html":         []byte("<html></html>"),
		"nested/deep/a b.txt": []byte("spaces and (parentheses)"),
		"empty":               nil,
	}
	for name, data := range files {
		if err := w.WriteFile(ctx, name, data); err != nil {
			t.Fatal(err)
		}
	}
	w.SetProperty("num_examples", 344)
	w.AddInput(artifacts.Input{Name: "examples", Type: artifacts.TypeDataset, URI: "mem://x/examples", Digest: "sha256:00"})
	sc, err := w.Commit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []artifacts.File
	for name, data := range files {
		sum := sha256.Sum256(data)
		want = append(want, artifacts.File{Path: name, Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
	}
	if got, exp := sc.Digest, artifacts.ContentDigest(want); got != exp {
		t.Errorf("digest %s, want %s", got, exp)
	}

	a, err := s.Open(ctx, u, artifacts.TypeStatistics)
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest != sc.Digest || len(a.Files) != len(files) || a.Name != "stats" {
		t.Errorf("reopened sidecar differs: %+v", a.Sidecar)
	}
	if n, err := artifacts.Property[int](a.Sidecar, "num_examples"); err != nil || n != 344 {
		t.Errorf("property num_examples = %d, %v", n, err)
	}
	if len(a.Inputs) != 1 || a.Inputs[0].Name != "examples" {
		t.Errorf("inputs = %+v", a.Inputs)
	}
	for name, data := range files {
		got, err := a.ReadFile(ctx, name)
		if err != nil {
			t.Fatalf("ReadFile(%q): %v", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("ReadFile(%q) = %q, want %q", name, got, data)
		}
	}
	if err := a.Verify(ctx); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if _, err := a.ReadFile(ctx, "absent"); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("ReadFile(absent) = %v, want ErrNotFound", err)
	}
}

func testNotFoundAndNotCommitted(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	if _, err := s.Open(ctx, root.Join("nothing"), ""); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("Open(empty prefix) = %v, want ErrNotFound", err)
	}
	u := root.Join("half")
	w := create(t, s, u, artifacts.TypeDataset)
	if err := w.WriteFile(ctx, "Split-train/part-00000.parquet", []byte("half written")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, u, ""); !errors.Is(err, artifacts.ErrNotCommitted) {
		t.Errorf("Open(uncommitted) = %v, want ErrNotCommitted", err)
	}
	// A new writer at an uncommitted prefix clears the dead attempt.
	w2 := create(t, s, u, artifacts.TypeDataset)
	if err := w2.WriteFile(ctx, "other", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.Open(ctx, u, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Files) != 1 || a.Files[0].Path != "other" {
		t.Errorf("files = %+v, want only the second writer's", a.Files)
	}
}

func testImmutable(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	u := root.Join("model")
	w := create(t, s, u, artifacts.TypeModel)
	if err := w.WriteFile(ctx, "model.onnx", []byte("onnx")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); !errors.Is(err, artifacts.ErrExists) {
		t.Errorf("second Commit = %v, want ErrExists", err)
	}
	if err := w.WriteFile(ctx, "more", nil); !errors.Is(err, artifacts.ErrExists) {
		t.Errorf("write after Commit = %v, want ErrExists", err)
	}
	if _, err := s.Create(ctx, u, artifacts.TypeModel, "model"); !errors.Is(err, artifacts.ErrExists) {
		t.Errorf("Create over committed = %v, want ErrExists", err)
	}
	// Two writers that both started before either committed: one wins.
	u2 := root.Join("race")
	a, b := create(t, s, u2, artifacts.TypeModel), create(t, s, u2, artifacts.TypeModel)
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); !errors.Is(err, artifacts.ErrExists) {
		t.Errorf("losing Commit = %v, want ErrExists", err)
	}
}

func testWrongType(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	u := root.Join("schema")
	w := create(t, s, u, artifacts.TypeSchema)
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	_, err := s.Open(ctx, u, artifacts.TypeDataset)
	if !errors.Is(err, artifacts.ErrInvalid) || !strings.Contains(err.Error(), "Schema") || !strings.Contains(err.Error(), "Dataset") {
		t.Errorf("Open(wrong type) = %v, want ErrInvalid naming both types", err)
	}
	if _, err := s.Create(ctx, root.Join("x"), "Bogus", "x"); !errors.Is(err, artifacts.ErrInvalid) {
		t.Errorf("Create(unknown type) = %v, want ErrInvalid", err)
	}
}

func testBadFileNames(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	w := create(t, s, root.Join("names"), artifacts.TypeModel)
	for _, name := range []string{"", "../escape", "a/../../b", "/abs", "a//b", "./a", "artifact.json", "a\\b", ".hidden", "a\x00b", "a/./b"} {
		if _, err := w.Create(context.Background(), name); !errors.Is(err, artifacts.ErrInvalid) {
			t.Errorf("Create(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

// overwrite replaces a stored blob behind the artifact layer's back.
func overwrite(t *testing.T, s *artifacts.Store, u artifacts.URI, data []byte) {
	t.Helper()
	ctx := context.Background()
	b, err := s.Bucket(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.WriteAll(ctx, u.Path, data, nil); err != nil {
		t.Fatal(err)
	}
}

func testTampered(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	u := root.Join("evaluation")
	w := create(t, s, u, artifacts.TypeEvaluation)
	if err := w.WriteFile(ctx, "metrics.json", []byte(`{"accuracy": 0.97}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteFile(ctx, "report.html", []byte("<p>ok</p>")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	overwrite(t, s, u.Join("report.html"), []byte("<p>OK</p>")) // one byte differs, same size
	a, err := s.Open(ctx, u, artifacts.TypeEvaluation)
	if err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{"Verify": a.Verify(ctx), "ReadFile": func() error { _, err := a.ReadFile(ctx, "report.html"); return err }()} {
		if !errors.Is(err, artifacts.ErrIntegrity) || !strings.Contains(err.Error(), "report.html") {
			t.Errorf("%s after tampering = %v, want ErrIntegrity naming report.html", name, err)
		}
	}
	if _, err := a.ReadFile(ctx, "metrics.json"); err != nil {
		t.Errorf("untouched file: %v", err)
	}
	// A tampered sidecar whose digest no longer matches its file list is refused.
	side, err := s.ReadAll(ctx, u.Join(artifacts.SidecarName))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("<p>OK</p>"))
	forged := bytes.Replace(side, []byte(a.Files[1].SHA256), []byte(hex.EncodeToString(sum[:])), 1)
	overwrite(t, s, u.Join(artifacts.SidecarName), forged)
	if _, err := s.Open(ctx, u, ""); !errors.Is(err, artifacts.ErrIntegrity) {
		t.Errorf("Open(tampered sidecar) = %v, want ErrIntegrity", err)
	}
}

func testLargePayload(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	u := root.Join("big")
	w := create(t, s, u, artifacts.TypeModel)
	f, err := w.Create(ctx, "model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	const size = 20 << 20 // above the 16 MiB multipart threshold of the S3 uploader
	h := sha256.New()
	chunk := make([]byte, 1<<20)
	for written := 0; written < size; written += len(chunk) {
		rand.Read(chunk)
		h.Write(chunk)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.Open(ctx, u, artifacts.TypeModel)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := a.File("model.onnx")
	if file.Size != size || file.SHA256 != hex.EncodeToString(h.Sum(nil)) {
		t.Errorf("recorded %+v, want size %d and the written digest", file, size)
	}
	r, err := a.Open(ctx, "model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r)
	if err != nil || n != size {
		t.Errorf("read back %d bytes, %v", n, err)
	}
}

func testCancelledWrite(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	u := root.Join("cancelled")
	w := create(t, s, u, artifacts.TypeDataset)
	ctx, cancel := context.WithCancel(context.Background())
	f, err := w.Create(ctx, "Split-train/part-00000.parquet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte("x"), 1<<20)); err != nil {
		t.Fatal(err)
	}
	cancel()
	f.Write(bytes.Repeat([]byte("y"), 1<<20))
	if err := f.Close(); err == nil {
		t.Fatal("Close after cancel succeeded")
	}
	if got := w.Files(); len(got) != 0 {
		t.Errorf("cancelled file recorded: %+v", got)
	}
	bg := context.Background()
	b, err := s.Bucket(bg, u)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := b.Exists(bg, u.Join("Split-train/part-00000.parquet").Path); ok {
		t.Error("cancelled write left a blob")
	}
	if _, err := s.Open(bg, u, ""); err == nil {
		t.Error("artifact opened after a cancelled write")
	}
}

func testAbort(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	u := root.Join("aborted")
	w := create(t, s, u, artifacts.TypeDataset)
	if err := w.WriteFile(ctx, "a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, u, ""); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("Open after Abort = %v, want ErrNotFound", err)
	}
}

func testDataset(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Body Mass (g)", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		{Name: "Species", Type: arrow.BinaryTypes.String, Nullable: true},
	}, nil)
	u := root.Join("examples")
	w := create(t, s, u, artifacts.TypeDataset)
	dw, err := artifacts.NewDatasetWriter(ctx, w, schema, []string{"train", "eval", "empty"}, artifacts.DatasetOptions{RowsPerPart: 1000, RowGroupRows: 256, Allocator: mem})
	if err != nil {
		t.Fatal(err)
	}
	b := array.NewRecordBuilder(mem, schema)
	defer b.Release()
	const rows = 2500
	for i := range rows {
		if i%7 == 0 {
			b.Field(0).AppendNull()
		} else {
			b.Field(0).(*array.Int64Builder).Append(int64(i))
		}
		b.Field(1).(*array.StringBuilder).Append([]string{"Adelie", "Gentoo", "Chinstrap"}[i%3])
		if (i+1)%500 == 0 {
			rec := b.NewRecordBatch()
			split := "train"
			if (i+1)%1500 == 0 {
				split = "eval"
			}
			if err := dw.Write(split, rec); err != nil {
				t.Fatal(err)
			}
			rec.Release()
		}
	}
	if err := dw.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.Open(ctx, u, artifacts.TypeDataset)
	if err != nil {
		t.Fatal(err)
	}
	splits, err := a.Splits()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		rows  int64
		parts int
	}{"train": {2000, 2}, "eval": {500, 1}, "empty": {0, 1}}
	for _, sp := range splits {
		if w := want[sp.Name]; sp.RowCount != w.rows || len(sp.Files) != w.parts {
			t.Errorf("split %s: %d rows in %d parts, want %d in %d", sp.Name, sp.RowCount, len(sp.Files), w.rows, w.parts)
		}
	}
	if n, _ := artifacts.Property[int64](a.Sidecar, artifacts.PropRowCount); n != rows {
		t.Errorf("row_count = %d, want %d", n, rows)
	}
	for split, w := range want {
		var got, nulls int64
		for rec, err := range a.Records(ctx, split, artifacts.ReadOptions{BatchSize: 300, Allocator: mem}) {
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Schema().Equal(schema) {
				t.Fatalf("schema %v, want %v", rec.Schema(), schema)
			}
			got += rec.NumRows()
			nulls += int64(rec.Column(0).NullN())
		}
		if got != w.rows {
			t.Errorf("split %s read %d rows, want %d", split, got, w.rows)
		}
		if split == "train" && nulls == 0 {
			t.Error("nulls lost")
		}
	}
	got, err := a.DatasetSchema(ctx)
	if err != nil || !got.Equal(schema) {
		t.Errorf("DatasetSchema = %v, %v", got, err)
	}
}

func testGlob(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	b, err := s.Bucket(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"raw/a.csv", "raw/b.csv", "raw/c.json", "raw/sub/d.csv"} {
		if err := b.WriteAll(ctx, root.Join(k).Path, []byte(k), nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Glob(ctx, root.Join("raw/*.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].URI.Base() != "a.csv" || got[1].URI.Base() != "b.csv" {
		t.Errorf("Glob = %+v", got)
	}
	if _, err := s.Glob(ctx, root.Join("raw/*.parquet")); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("Glob(no match) = %v, want ErrNotFound", err)
	}
	if one, err := s.Glob(ctx, root.Join("raw/c.json")); err != nil || len(one) != 1 || one[0].Size != int64(len("raw/c.json")) {
		t.Errorf("Glob(one file) = %+v, %v", one, err)
	}
}

func testExecution(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	e := &artifacts.Execution{ID: "20260101T000000.000000Z-abc", Step: "import", Version: "test", Status: artifacts.StatusSucceeded}
	if err := s.WriteExecution(ctx, root, e); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteExecution(ctx, root, e); !errors.Is(err, artifacts.ErrExists) {
		t.Errorf("second WriteExecution = %v, want ErrExists", err)
	}
	got, err := s.ReadExecution(ctx, root, e.ID)
	if err != nil || got.Step != "import" {
		t.Errorf("ReadExecution = %+v, %v", got, err)
	}
}

func testCopy(t *testing.T, s *artifacts.Store, root artifacts.URI) {
	ctx := context.Background()
	src := root.Join("model")
	w := create(t, s, src, artifacts.TypeModel)
	if err := w.WriteFile(ctx, "model.onnx", []byte("weights")); err != nil {
		t.Fatal(err)
	}
	w.SetProperty("opset", 17)
	w.SetProducer(artifacts.Producer{Step: "train", Version: "1"})
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	a, err := s.Open(ctx, src, artifacts.TypeModel)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := s.Copy(ctx, a, root.Join("copy"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.Digest != a.Digest || sc.Producer.Step != "train" || sc.Properties["opset"] != float64(17) {
		t.Errorf("copy %+v differs from its source", sc)
	}
	if _, err := s.Copy(ctx, a, root.Join("copy")); !errors.Is(err, artifacts.ErrExists) {
		t.Errorf("copy over a committed artifact: %v", err)
	}
	overwrite(t, s, src.Join("model.onnx"), []byte("WEIGHTS"))
	if _, err := s.Copy(ctx, a, root.Join("copy2")); !errors.Is(err, artifacts.ErrIntegrity) {
		t.Errorf("copy of a tampered artifact: %v", err)
	}
	if _, err := s.Open(ctx, root.Join("copy2"), ""); !errors.Is(err, artifacts.ErrNotFound) {
		t.Errorf("a failed copy left %v", err)
	}
}
