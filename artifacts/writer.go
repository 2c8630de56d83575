package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"slices"
	"sync"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Writer builds one artifact. Payload files are streamed and hashed as they
// are written; Commit writes the sidecar, after which the artifact is
// immutable. A Writer is safe for concurrent use by several file writers.
type Writer struct {
	store  *Store
	bucket *blob.Bucket
	uri    URI

	mu        sync.Mutex
	sc        Sidecar
	files     map[string]File
	open      map[string]bool
	committed bool
	now       func() time.Time
}

// Create starts a new artifact at u. It fails with ErrExists when an
// artifact is already committed there. Files left by an earlier writer that
// never committed are removed, since nothing can have read them.
func (s *Store) Create(ctx context.Context, u URI, typ Type, name string) (*Writer, error) {
	if !typ.Known() {
		return nil, invalidf("create %s: unknown type %q", u, typ)
	}
	b, err := s.Bucket(ctx, u)
	if err != nil {
		return nil, err
	}
	ok, err := b.Exists(ctx, u.key(SidecarName))
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", Redact(u.String()), err)
	}
	if ok {
		return nil, fmt.Errorf("create %s: %w: artifacts are immutable; write to a new URI", Redact(u.String()), ErrExists)
	}
	if err := deletePrefix(ctx, b, u.prefix()); err != nil {
		return nil, fmt.Errorf("create %s: clear an uncommitted attempt: %w", Redact(u.String()), err)
	}
	return &Writer{
		store:  s,
		bucket: b,
		uri:    u,
		sc:     Sidecar{SchemaVersion: SchemaVersion, Type: typ, Name: name, URI: Redact(u.String()), Properties: map[string]any{}},
		files:  map[string]File{},
		open:   map[string]bool{},
		now:    time.Now,
	}, nil
}

// deletePrefix removes every blob below prefix.
func deletePrefix(ctx context.Context, b *blob.Bucket, prefix string) error {
	if prefix == "" {
		return invalidf("refusing to clear a whole bucket")
	}
	it := b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return err
		}
	}
}

// URI returns where the artifact is being written.
func (w *Writer) URI() URI { return w.uri }

// Type returns the artifact's type.
func (w *Writer) Type() Type { return w.sc.Type }

// SetProperty records a type-specific fact in the sidecar. Values must
// marshal to JSON.
func (w *Writer) SetProperty(key string, value any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sc.Properties[key] = value
}

// SetProducer records the execution that writes the artifact.
func (w *Writer) SetProducer(p Producer) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sc.Producer = &p
}

// AddInput records a lineage edge to an artifact the producer read.
func (w *Writer) AddInput(in Input) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sc.Inputs = append(w.sc.Inputs, in)
}

// FileWriter streams one payload file. Close finishes it; a write or close
// after its context is cancelled fails and the file is not recorded.
type FileWriter struct {
	w    *Writer
	name string
	bw   *blob.Writer
	hash hash.Hash
	size int64
	err  error
}

// Create opens a payload file for writing.
func (w *Writer) Create(ctx context.Context, name string) (*FileWriter, error) {
	if err := CheckFileName(name); err != nil {
		return nil, fmt.Errorf("artifact %s: %w", w.sc.URI, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed {
		return nil, fmt.Errorf("artifact %s: %w", w.sc.URI, ErrExists)
	}
	if _, dup := w.files[name]; dup || w.open[name] {
		return nil, invalidf("artifact %s: file %q written twice", w.sc.URI, name)
	}
	bw, err := w.bucket.NewWriter(ctx, w.uri.key(name), &blob.WriterOptions{ContentType: contentType(name)})
	if err != nil {
		return nil, fmt.Errorf("artifact %s: create %s: %w", w.sc.URI, name, err)
	}
	w.open[name] = true
	return &FileWriter{w: w, name: name, bw: bw, hash: sha256.New()}, nil
}

func (f *FileWriter) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.bw.Write(p)
	f.hash.Write(p[:n])
	f.size += int64(n)
	if err != nil {
		f.err = fmt.Errorf("artifact %s: write %s: %w", f.w.sc.URI, f.name, err)
		return n, f.err
	}
	return n, nil
}

// Close finishes the file and records its size and digest.
func (f *FileWriter) Close() error {
	err := f.bw.Close()
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	delete(f.w.open, f.name)
	if f.err != nil {
		return f.err
	}
	if err != nil {
		return fmt.Errorf("artifact %s: close %s: %w", f.w.sc.URI, f.name, err)
	}
	f.w.files[f.name] = File{Path: f.name, Size: f.size, SHA256: hex.EncodeToString(f.hash.Sum(nil))}
	return nil
}

// WriteFile writes a whole payload file.
func (w *Writer) WriteFile(ctx context.Context, name string, data []byte) error {
	f, err := w.Create(ctx, name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteJSON writes v as an indented JSON payload file.
func (w *Writer) WriteJSON(ctx context.Context, name string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("artifact %s: encode %s: %w", w.sc.URI, name, err)
	}
	return w.WriteFile(ctx, name, append(data, '\n'))
}

// Files returns the payload files finished so far, sorted by path.
func (w *Writer) Files() []File {
	w.mu.Lock()
	defer w.mu.Unlock()
	return sortedFiles(w.files)
}

func sortedFiles(m map[string]File) []File {
	return slices.SortedFunc(maps.Values(m), func(a, b File) int {
		switch {
		case a.Path < b.Path:
			return -1
		case a.Path > b.Path:
			return 1
		}
		return 0
	})
}

// Commit writes the sidecar, making the artifact visible to readers. It
// fails if a file is still open, and with ErrExists if another writer
// committed the same URI first.
func (w *Writer) Commit(ctx context.Context) (*Sidecar, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed {
		return nil, fmt.Errorf("artifact %s: %w", w.sc.URI, ErrExists)
	}
	if len(w.open) > 0 {
		return nil, invalidf("artifact %s: commit with files still open: %v", w.sc.URI, slices.Sorted(maps.Keys(w.open)))
	}
	sc := w.sc
	sc.Files = sortedFiles(w.files)
	sc.Digest = ContentDigest(sc.Files)
	sc.Created = w.now().UTC()
	sc.Properties = maps.Clone(w.sc.Properties)
	if err := sc.Validate(); err != nil {
		return nil, fmt.Errorf("artifact %s: %w", sc.URI, err)
	}
	data, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("artifact %s: encode sidecar: %w", sc.URI, err)
	}
	data = append(data, '\n')
	err = w.bucket.WriteAll(ctx, w.uri.key(SidecarName), data, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if err != nil {
		if gcerrors.Code(err) == gcerrors.FailedPrecondition {
			return nil, fmt.Errorf("commit %s: %w", sc.URI, ErrExists)
		}
		return nil, fmt.Errorf("commit %s: %w", sc.URI, err)
	}
	w.committed = true
	return &sc, nil
}

// Abort removes what the writer wrote, best effort; it is a no-op after
// Commit. Readers ignore an uncommitted prefix anyway, so a failed Abort
// leaves garbage, never a false artifact.
func (w *Writer) Abort(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed {
		return nil
	}
	var errs []error
	for name := range w.files {
		if err := w.bucket.Delete(ctx, w.uri.key(name)); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			errs = append(errs, err)
		}
	}
	w.files = map[string]File{}
	return errors.Join(errs...)
}

func contentType(name string) string {
	switch path.Ext(name) {
	case ".json":
		return "application/json"
	case ".html":
		return "text/html; charset=utf-8"
	}
	return "application/octet-stream"
}
