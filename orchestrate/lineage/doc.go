// Package lineage answers where an artifact came from and what was made
// from it, from the records every step run leaves on blob storage: each
// artifact's artifact.json (its producer and its inputs with their
// digests) and each run's execution record under <root>/.mlsteps/executions.
// There is no metadata server: lineage works the same on a laptop, in Argo
// and in KFP.
//
// A node is an artifact version (URI and digest) or an execution (its id).
// Upstream of an artifact is the execution that wrote it, the artifacts
// that execution read, and so on; downstream is every execution whose
// inputs name the artifact's URI and digest, what those wrote, and so on.
//
// Queries run on a Source. BlobSource walks a root on blob storage; Index is
// a SQL index (embedded SQLite through a pure-Go driver, or PostgreSQL for
// shared use) built and updated incrementally from the same walk, answering
// the same queries faster on large stores. The index can always be dropped
// and rebuilt: the blob store stays the source of truth.
//
//	store := artifacts.NewStore()
//	defer store.Close()
//	root := artifacts.MustParseURI("file:///runs/penguins")
//	g, err := lineage.Query(ctx, lineage.NewBlobSource(store, &root),
//		"file:///runs/penguins/train/model", lineage.Options{Direction: lineage.Up})
//	if err != nil { ... }
//	lineage.Render(os.Stdout, g, "text", lineage.Up)
//
//	ix, err := lineage.OpenIndex(ctx, "sqlite:///tmp/lineage.db")
//	_, err = ix.Update(ctx, store, root, lineage.UpdateOptions{})
//	g, err = lineage.Query(ctx, ix, uri, lineage.Options{Direction: lineage.Both})
//
// Verify re-checks every recorded link (input and output digests against
// the artifacts they point to, and each artifact's files against its
// sidecar); Diff explains how two artifacts came to differ; UpstreamLinks
// gives reports the links to their inputs.
//
// # Errors
//
// Query and Diff fail with an error wrapping artifacts.ErrNotFound when the
// artifact asked about is not known to the source (not committed, or not
// below the walked root). ParseDB and OpenIndex fail with
// artifacts.ErrInvalid on a malformed --db URL. A sidecar or record that
// cannot be decoded does not fail a walk: Verify reports it as a Problem.
// Queries on an index never built say so and name the command that builds
// it.
package lineage
