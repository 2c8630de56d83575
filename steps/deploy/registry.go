package deploy

import (
	"context"
	"errors"
	"fmt"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/components/registry"
)

// Registry is a components/registry registry at a blob URL, with the
// artifact-level operations on it: a version's Model artifact, pushing
// one, checking one before the pointer moves to it.
type Registry struct {
	*registry.Registry
	// Root is the registry's URL.
	Root  artifacts.URI
	store *artifacts.Store
}

// OpenRegistry opens the registry at raw, a blob URL (file://, mem://,
// s3://, gs://, azblob://) or a local path.
func OpenRegistry(ctx context.Context, store *artifacts.Store, raw string) (*Registry, error) {
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	b, err := store.Bucket(ctx, u)
	if err != nil {
		return nil, err
	}
	var opts registry.Options
	switch u.Scheme {
	case "file":
		// The store's file buckets are rooted at /: keys are absolute paths.
		opts.LocalDir = "/"
	case "mem", "gs", "azblob":
		opts.ClaimSettle = -1 // their write-if-absent is atomic
	}
	return &Registry{Registry: registry.New(b, u.Path, opts), Root: u, store: store}, nil
}

// VersionURI is the URL of version n's Model artifact.
func (r *Registry) VersionURI(name string, n int) artifacts.URI {
	u := r.Root
	u.Path = r.VersionKey(name, n)
	return u
}

// PointerURI is the URL of the model's pointer, what `serve --watch` and
// `infer --watch` follow.
func (r *Registry) PointerURI(name string) artifacts.URI {
	u := r.Root
	u.Path = r.PointerKey(name)
	return u
}

// Open opens version n's Model artifact and checks that its content is the
// one its record names, every file re-hashed.
func (r *Registry) Open(ctx context.Context, name string, n int) (*artifacts.Artifact, registry.Version, error) {
	v, err := r.Get(ctx, name, n)
	if err != nil {
		return nil, v, err
	}
	a, err := r.store.Open(ctx, r.VersionURI(name, n), artifacts.TypeModel)
	if err != nil {
		return nil, v, fmt.Errorf("%s version %d: %w", name, n, err)
	}
	if a.Digest != v.Digest {
		return nil, v, fmt.Errorf("%s version %d: %w: the artifact's digest %s is not the recorded %s", name, n, artifacts.ErrIntegrity, a.Digest, v.Digest)
	}
	if err := a.Verify(ctx); err != nil {
		return nil, v, fmt.Errorf("%s version %d: %w", name, n, err)
	}
	return a, v, nil
}

// Push copies model into a newly claimed version of name, checks the copy
// (digest and every file re-hashed), records v (its Name, Version and
// Digest filled in) and switches the pointer, last. It returns the
// version record and the pointer as it now is.
func (r *Registry) Push(ctx context.Context, model *artifacts.Artifact, name, by string, v registry.Version) (registry.Version, registry.Pointer, error) {
	c, err := r.Claim(ctx, name, by)
	if err != nil {
		return v, registry.Pointer{}, err
	}
	n := c.Version
	dst := r.VersionURI(name, n)
	sc, err := r.store.Copy(ctx, model, dst)
	if err != nil {
		return v, registry.Pointer{}, fmt.Errorf("push %s version %d: %w", name, n, err)
	}
	copied, err := r.store.Open(ctx, dst, artifacts.TypeModel)
	if err == nil {
		err = copied.Verify(ctx)
	}
	if err == nil && (copied.Digest != model.Digest || sc.Digest != model.Digest) {
		err = fmt.Errorf("%w: copy digest %s, model digest %s", artifacts.ErrIntegrity, copied.Digest, model.Digest)
	}
	if err != nil {
		return v, registry.Pointer{}, fmt.Errorf("push %s version %d: check the copy: %w", name, n, err)
	}
	v.Name, v.Version, v.Claim, v.Digest = name, n, c.Token, model.Digest
	p, err := r.Publish(ctx, v)
	if err != nil {
		return v, p, err
	}
	v.URI = fmt.Sprintf("versions/%d", n) // as Publish records it
	return v, p, nil
}

// userErr marks registry errors that are the caller's mistake.
func userErr(err error) bool {
	return errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrInvalid) ||
		errors.Is(err, artifacts.ErrInvalid) || errors.Is(err, artifacts.ErrNotFound)
}
