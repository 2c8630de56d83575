package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"

	"github.com/mlsteps/mlsteps/components/registry"
)

// newRegistry returns a registry on one backend.
type newRegistry func(t *testing.T) *registry.Registry

func backends() map[string]newRegistry {
	return map[string]newRegistry{
		"mem": func(t *testing.T) *registry.Registry {
			b := memblob.OpenBucket(nil)
			t.Cleanup(func() { b.Close() })
			return registry.New(b, "models", registry.Options{ClaimSettle: time.Millisecond})
		},
		"file": func(t *testing.T) *registry.Registry {
			dir := t.TempDir()
			b, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true, Metadata: fileblob.MetadataDontWrite})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return registry.New(b, "team/models", registry.Options{LocalDir: dir})
		},
	}
}

// push claims, "copies" (nothing: the registry does not read the files)
// and publishes one version.
func push(t *testing.T, r *registry.Registry, name, digest string) (int, registry.Pointer) {
	t.Helper()
	ctx := context.Background()
	c, err := r.Claim(ctx, name, "test")
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Publish(ctx, registry.Version{Name: name, Version: c.Version, Claim: c.Token, Digest: digest, Blessing: &registry.Blessing{Blessed: true}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Version, p
}

func TestRegistry(t *testing.T) {
	for backend, open := range backends() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			r := open(t)
			if _, err := r.Current(ctx, "penguins"); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("Current before any push: %v, want ErrNotFound", err)
			}
			for i := 1; i <= 3; i++ {
				n, p := push(t, r, "penguins", fmt.Sprintf("sha256:%064d", i))
				if n != i || p.Version != i || p.URI != fmt.Sprintf("versions/%d", i) || p.Reason != registry.ReasonPush || p.Previous != i-1 {
					t.Fatalf("push %d: version %d, pointer %+v", i, n, p)
				}
			}
			// A push that dies after its claim leaves version 4 incomplete.
			if c, err := r.Claim(ctx, "penguins", "dies"); err != nil || c.Version != 4 {
				t.Fatalf("claim: %+v, %v", c, err)
			}
			if n, _ := push(t, r, "penguins", "sha256:5"); n != 5 {
				t.Fatalf("after an incomplete 4, the next push got %d, want 5", n)
			}
			entries, err := r.List(ctx, "penguins")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range entries {
				got = append(got, fmt.Sprintf("%d:%v:%v", e.Version, e.Complete(), e.Current))
			}
			if want := []string{"1:true:false", "2:true:false", "3:true:false", "4:false:false", "5:true:true"}; !slices.Equal(got, want) {
				t.Fatalf("List: %v, want %v", got, want)
			}
			if entries[0].Claim == nil || entries[0].Claim.By != "test" || entries[0].Record.Digest != fmt.Sprintf("sha256:%064d", 1) {
				t.Fatalf("entry 1: %+v %+v", entries[0].Claim, entries[0].Record)
			}

			// Rollback skips the incomplete version, and --to goes anywhere complete.
			p, err := r.Rollback(ctx, "penguins", 0)
			if err != nil || p.Version != 3 || p.Reason != registry.ReasonRollback || p.Previous != 5 {
				t.Fatalf("rollback: %+v, %v", p, err)
			}
			if _, err := r.Rollback(ctx, "penguins", 4); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("rollback to the incomplete 4: %v, want ErrNotFound", err)
			}
			if p, err = r.Rollback(ctx, "penguins", 1); err != nil || p.Version != 1 {
				t.Fatalf("rollback --to 1: %+v, %v", p, err)
			}
			if _, err := r.Rollback(ctx, "penguins", 0); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("rollback below the first version: %v, want ErrNotFound", err)
			}
			if cur, err := r.Current(ctx, "penguins"); err != nil || cur.Version != 1 || cur.Digest != fmt.Sprintf("sha256:%064d", 1) {
				t.Fatalf("current: %+v, %v", cur, err)
			}
			// A new push after a rollback takes the pointer again.
			if n, p := push(t, r, "penguins", "sha256:6"); n != 6 || p.Version != 6 {
				t.Fatalf("push after rollback: %d %+v", n, p)
			}
			push(t, r, "cars", "sha256:c")
			names, err := r.Names(ctx)
			if err != nil || !slices.Equal(names, []string{"cars", "penguins"}) {
				t.Fatalf("Names: %v, %v", names, err)
			}
		})
	}
}

// TestPublishNeverMovesBack: a slow push that finishes after a later one
// is recorded but leaves the pointer at the later version.
func TestPublishNeverMovesBack(t *testing.T) {
	for backend, open := range backends() {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			r := open(t)
			slow, _ := r.Claim(ctx, "m", "slow")
			fast, _ := r.Claim(ctx, "m", "fast")
			if _, err := r.Publish(ctx, registry.Version{Name: "m", Version: fast.Version, Claim: fast.Token, Digest: "sha256:f"}); err != nil {
				t.Fatal(err)
			}
			p, err := r.Publish(ctx, registry.Version{Name: "m", Version: slow.Version, Claim: slow.Token, Digest: "sha256:s"})
			if err != nil || p.Version != fast.Version {
				t.Fatalf("late publish of %d moved the pointer: %+v, %v", slow.Version, p, err)
			}
			if _, err := r.Publish(ctx, registry.Version{Name: "m", Version: slow.Version, Digest: "sha256:s"}); !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("publishing a version twice: %v, want ErrInvalid", err)
			}
			third, _ := r.Claim(ctx, "m", "third")
			if _, err := r.Publish(ctx, registry.Version{Name: "m", Version: third.Version, Claim: slow.Token, Digest: "sha256:t"}); !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("publishing under another's claim: %v, want ErrInvalid", err)
			}
		})
	}
}

// TestClaimRace: goroutines claiming at once each get their own number,
// and the numbers have no gaps.
func TestClaimRace(t *testing.T) {
	for backend, open := range backends() {
		t.Run(backend, func(t *testing.T) {
			r := open(t)
			const n = 16
			got := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					c, err := r.Claim(context.Background(), "race", fmt.Sprint("g", i))
					if err != nil {
						t.Error(err)
					}
					got[i] = c.Version
				})
			}
			wg.Wait()
			slices.Sort(got)
			for i, v := range got {
				if v != i+1 {
					t.Fatalf("claimed numbers %v, want 1..%d each once", got, n)
				}
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	for name, ok := range map[string]bool{"penguins": true, "penguins-mlp": true, "a": true, "m.v2_x": true,
		"": false, "Penguins": false, "-a": false, "a/b": false, "..": false, "a b": false, string(make([]byte, 64)): false} {
		if err := registry.CheckName(name); (err == nil) != ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
}

func ExampleRegistry() {
	ctx := context.Background()
	b := memblob.OpenBucket(nil)
	defer b.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	// memblob's write-if-absent is atomic: no read-back needed.
	reg := registry.New(b, "models", registry.Options{Now: func() time.Time { return now }, ClaimSettle: -1})
	for _, digest := range []string{"sha256:aaa", "sha256:bbb"} {
		c, _ := reg.Claim(ctx, "penguins", "example")
		// The model's files go below reg.VersionKey("penguins", n) here.
		if err := b.WriteAll(ctx, reg.VersionKey("penguins", c.Version)+"/model.onnx", []byte("..."), nil); err != nil {
			panic(err)
		}
		p, _ := reg.Publish(ctx, registry.Version{Name: "penguins", Version: c.Version, Claim: c.Token, Digest: digest})
		fmt.Println("pushed", reg.VersionKey("penguins", c.Version), "current", p.URI)
	}
	p, _ := reg.Rollback(ctx, "penguins", 0)
	data, _ := b.ReadAll(ctx, reg.PointerKey("penguins"))
	fmt.Println("rolled back to", p.Version)
	fmt.Print(string(data))
	// Output:
	// pushed models/penguins/versions/1 current versions/1
	// pushed models/penguins/versions/2 current versions/2
	// rolled back to 1
	// {
	//   "uri": "versions/1",
	//   "version": 1,
	//   "digest": "sha256:aaa",
	//   "switched": "2026-01-02T03:04:05Z",
	//   "reason": "rollback",
	//   "previous": 2
	// }
}
