package artifacts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Artifact is a committed artifact opened for reading.
type Artifact struct {
	*Sidecar
	store  *Store
	bucket *blob.Bucket
	uri    URI
	files  map[string]File
}

// Open reads the sidecar at u and checks it. want, when not empty, is the
// type the caller expects; another type is an ErrInvalid error naming both.
func (s *Store) Open(ctx context.Context, u URI, want Type) (*Artifact, error) {
	b, err := s.Bucket(ctx, u)
	if err != nil {
		return nil, err
	}
	data, err := b.ReadAll(ctx, u.key(SidecarName))
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, s.missing(ctx, b, u)
	}
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", Redact(u.String()), err)
	}
	sc, err := ParseSidecar(data)
	if err != nil {
		return nil, fmt.Errorf("open artifact %s: %w", Redact(u.String()), err)
	}
	if want != "" && sc.Type != want {
		return nil, fmt.Errorf("open artifact %s: %w: it is a %s, expected a %s", Redact(u.String()), ErrInvalid, sc.Type, want)
	}
	files := make(map[string]File, len(sc.Files))
	for _, f := range sc.Files {
		files[f.Path] = f
	}
	return &Artifact{Sidecar: sc, store: s, bucket: b, uri: u, files: files}, nil
}

// missing tells an empty prefix (not found) from an uncommitted one.
func (s *Store) missing(ctx context.Context, b *blob.Bucket, u URI) error {
	it := b.List(&blob.ListOptions{Prefix: u.prefix()})
	if _, err := it.Next(ctx); err == nil {
		return fmt.Errorf("open artifact %s: %w: payload files but no %s (the writer failed or is still running)", Redact(u.String()), ErrNotCommitted, SidecarName)
	}
	return fmt.Errorf("open artifact %s: %w", Redact(u.String()), ErrNotFound)
}

// Location returns where the artifact was opened (the sidecar's URI field is
// where it was written, which differs after a copy).
func (a *Artifact) Location() URI { return a.uri }

// File returns a payload file's entry.
func (a *Artifact) File(name string) (File, bool) {
	f, ok := a.files[name]
	return f, ok
}

// Open streams a payload file. The size and digest are checked as it is
// read: the Read that reaches the end returns an ErrIntegrity error naming
// the file if either differs.
func (a *Artifact) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	f, ok := a.files[name]
	if !ok {
		return nil, fmt.Errorf("artifact %s: %w: no file %q", a.URI, ErrNotFound, name)
	}
	r, err := a.bucket.NewReader(ctx, a.uri.key(name), nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("artifact %s: file %s: %w: listed in the sidecar but missing", a.URI, name, ErrIntegrity)
		}
		return nil, fmt.Errorf("artifact %s: open %s: %w", a.URI, name, err)
	}
	return &verifyingReader{r: r, want: f, hash: sha256.New(), artifact: a.URI}, nil
}

// ReadFile reads a whole payload file, verified.
func (a *Artifact) ReadFile(ctx context.Context, name string) ([]byte, error) {
	r, err := a.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

type verifyingReader struct {
	r        io.ReadCloser
	want     File
	hash     hash.Hash
	size     int64
	artifact string
	err      error
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.hash.Write(p[:n])
	v.size += int64(n)
	if v.size > v.want.Size {
		v.err = v.mismatch(fmt.Sprintf("more than the %d bytes recorded", v.want.Size))
		return n, v.err
	}
	if err == io.EOF {
		if v.size != v.want.Size {
			v.err = v.mismatch(fmt.Sprintf("%d bytes, the sidecar records %d", v.size, v.want.Size))
			return n, v.err
		}
		if got := hex.EncodeToString(v.hash.Sum(nil)); got != v.want.SHA256 {
			v.err = v.mismatch(fmt.Sprintf("sha256 %s, the sidecar records %s", got, v.want.SHA256))
			return n, v.err
		}
	}
	return n, err
}

func (v *verifyingReader) mismatch(why string) error {
	return fmt.Errorf("artifact %s: file %s: %w: %s", v.artifact, v.want.Path, ErrIntegrity, why)
}

func (v *verifyingReader) Close() error { return v.r.Close() }

// Verify re-hashes every payload file and returns an ErrIntegrity error
// naming the first (in path order) whose size or digest differs.
func (a *Artifact) Verify(ctx context.Context) error {
	for _, f := range a.Files {
		r, err := a.Open(ctx, f.Path)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// LocalFile returns a verified local path of a payload file, for readers
// that need random access (Parquet). A file:// artifact is hashed in place
// and read there; others are downloaded to a temporary file while hashing.
// Call release when done.
func (a *Artifact) LocalFile(ctx context.Context, name string) (path string, release func(), err error) {
	if local, ok := a.uri.Join(name).LocalPath(); ok {
		r, err := a.Open(ctx, name)
		if err != nil {
			return "", nil, err
		}
		_, err = io.Copy(io.Discard, r)
		r.Close()
		if err != nil {
			return "", nil, err
		}
		return local, func() {}, nil
	}
	r, err := a.Open(ctx, name)
	if err != nil {
		return "", nil, err
	}
	defer r.Close()
	tmp, err := os.CreateTemp("", "mlsteps-*"+filepath.Ext(name))
	if err != nil {
		return "", nil, fmt.Errorf("artifact %s: stage %s: %w", a.URI, name, err)
	}
	release = func() { os.Remove(tmp.Name()) }
	_, err = io.Copy(tmp, r)
	err = errors.Join(err, tmp.Close())
	if err != nil {
		release()
		return "", nil, fmt.Errorf("artifact %s: stage %s: %w", a.URI, name, err)
	}
	return tmp.Name(), release, nil
}
