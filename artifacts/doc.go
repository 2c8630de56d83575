// Package artifacts stores typed ML artifacts on any gocloud.dev blob URL.
//
// An artifact is a prefix (a "folder") at a blob URL holding payload files
// and one artifact.json sidecar, written last. The sidecar's presence is the
// commit: readers refuse a prefix without it, so a step killed half-way never
// leaves something that looks whole. The sidecar lists every payload file with
// its size and sha256, an overall content digest, type-specific properties,
// the producing step and the input artifacts it read (the lineage edge).
//
// Supported URLs: file:///abs/path (and plain local paths), mem://name/path
// (process-local), s3://bucket/path?endpoint=…, gs://bucket/path and
// azblob://container/path.
//
//	store := artifacts.NewStore()
//	defer store.Close()
//	w, err := store.Create(ctx, "file:///tmp/run/examples", artifacts.TypeDataset, "examples")
//	...
//	err = w.WriteFile(ctx, "notes.txt", []byte("hello"))
//	sc, err := w.Commit(ctx) // writes artifact.json; sc.Digest is the content identity
//
//	a, err := store.Open(ctx, "file:///tmp/run/examples", artifacts.TypeDataset)
//	r, err := a.Open(ctx, "notes.txt") // the digest is checked when r reaches EOF
//
// # Digests
//
// A file's digest is the sha256 of its bytes. The artifact digest is
// "sha256:" followed by the sha256 over the lines "path\x00hex-sha256\n" of
// every payload file, sorted by path. It covers content only (never times,
// hosts or the URI), so equal content has equal digests wherever it lives.
//
// # Errors
//
// Errors can be checked with errors.Is against ErrNotFound (nothing at the
// URI), ErrNotCommitted (payload files but no sidecar), ErrExists (writing
// over a committed artifact), ErrIntegrity (a digest or size differs; the
// message names the file), ErrInvalid (a bad URI, file name, type or sidecar).
package artifacts
