package artifacts_test

import (
	"context"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
)

func ExampleStore_Create() {
	ctx := context.Background()
	store := artifacts.NewStore()
	defer store.Close()

	u := artifacts.MustParseURI("mem://example/run-1/schema")
	w, err := store.Create(ctx, u, artifacts.TypeSchema, "schema")
	if err != nil {
		panic(err)
	}
	if err := w.WriteFile(ctx, "schema.json", []byte(`{"feature":[]}`)); err != nil {
		panic(err)
	}
	sc, err := w.Commit(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Println(sc.Type, len(sc.Files), sc.Digest[:7])

	a, err := store.Open(ctx, u, artifacts.TypeSchema)
	if err != nil {
		panic(err)
	}
	data, err := a.ReadFile(ctx, "schema.json") // digest-checked
	fmt.Println(string(data), err)
	// Output:
	// Schema 1 sha256:
	// {"feature":[]} <nil>
}

func ExampleContentDigest() {
	files := []artifacts.File{
		{Path: "b.txt", Size: 1, SHA256: "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"},
		{Path: "a.txt", Size: 1, SHA256: "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
	}
	// Order does not matter, times and URIs are not part of it.
	fmt.Println(artifacts.ContentDigest(files) == artifacts.ContentDigest([]artifacts.File{files[1], files[0]}))
	// Output: true
}
