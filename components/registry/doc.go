// Package registry is a versioned model registry on plain blob storage:
// numbered versions of a model, each written once, and a small pointer
// object naming the version readers should use. It needs no server and no
// locks, so it works on any gocloud bucket (local files, S3, GCS, Azure,
// memory), like MLflow's or TFX Pusher's file-based registries.
//
// Under a root prefix, each model name holds:
//
//	<name>/claims/<n>        who claimed version n (written if absent, never twice)
//	<name>/versions/<n>/     the model's files, written by the caller
//	<name>/records/<n>.json  the version's record, written once the files are whole
//	<name>/current           {"uri": "versions/<n>", "version": n, "digest": ...}
//
// A push claims the next free number, writes the model's files under
// versions/<n>/, then Publish writes the record and switches the pointer,
// last. Readers that follow the pointer therefore always find a whole
// version, and a push that dies half-way leaves a claim without a record,
// which List reports as incomplete and nothing ever points to.
//
//	reg := registry.New(bucket, "models", registry.Options{})
//	c, err := reg.Claim(ctx, "penguins", "push by run 42")
//	// ... copy the model to reg.VersionKey("penguins", c.Version) ...
//	p, err := reg.Publish(ctx, registry.Version{Name: "penguins", Version: c.Version, Claim: c.Token, Digest: digest})
//	p, err = reg.Rollback(ctx, "penguins", 0) // back to the previous version
//
// # Concurrency
//
// Version numbers are claimed with a write-if-absent (gocloud's
// WriterOptions.IfNotExist: S3's If-None-Match, GCS and Azure
// preconditions, memblob's lock), retrying with the next number when
// another writer won, so two pushes never share a number. Some
// S3-compatible servers check the condition and then write, so two
// writers can both "create" a claim; Claim therefore reads its claim back
// after a short settle (Options.ClaimSettle) and moves on when it holds
// another writer's token, and Publish checks the token again before it
// records anything. gocloud's
// fileblob checks IfNotExist only within one process, so for a bucket on
// the local filesystem set Options.LocalDir: claims are then created with
// O_EXCL, which is atomic across processes. The pointer is one small object
// replaced whole, so it always names a whole version. A publish leaves a
// pointer that names a higher version alone; blob stores offer no
// compare-and-swap, so two publishes in the same instant may still leave
// the lower of the two current (both are whole; push again or roll
// forward with Rollback to pick).
//
// # Errors
//
// Errors wrap ErrNotFound (no such name, version or pointer) and
// ErrInvalid (a malformed name, record or pointer).
package registry
