package lineage

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Problem kinds found by Verify.
const (
	// ProblemMissing: a recorded link points at a URI with no artifact.
	ProblemMissing = "missing"
	// ProblemDigest: the artifact at a linked URI has another digest than
	// the one recorded (it was replaced or rewritten).
	ProblemDigest = "digest-mismatch"
	// ProblemTampered: an artifact's files no longer match its sidecar, or
	// the sidecar no longer matches its own file list.
	ProblemTampered = "tampered"
	// ProblemUnreadable: an execution record that does not decode.
	ProblemUnreadable = "unreadable"
)

var errOutside = errors.New("link leaves the root")

// Problem is one broken or tampered link.
type Problem struct {
	// URI is the artifact (or record) the problem is about.
	URI  string `json:"uri"`
	Kind string `json:"kind"`
	// Referrer is the artifact or execution whose record holds the link.
	Referrer string `json:"referrer,omitempty"`
	Detail   string `json:"detail"`
}

func (p Problem) String() string {
	s := p.Kind + " " + p.URI
	if p.Referrer != "" {
		s += " (linked from " + p.Referrer + ")"
	}
	return s + ": " + p.Detail
}

// VerifyOptions shape Verify; the zero value re-hashes every payload.
type VerifyOptions struct {
	// SkipPayload checks links and sidecars only, without re-reading every
	// payload file (much faster on large stores).
	SkipPayload bool
	// RootOnly does not open artifacts outside root that links point to;
	// such links are left unchecked.
	RootOnly bool
}

// Verify re-checks every link recorded below root: each input digest in a
// sidecar or execution record against the artifact it points to, each
// output digest of a finished execution, and (unless SkipPayload) each
// artifact's files against its sidecar. It returns the problems sorted by
// URI; an error means the walk itself failed.
func Verify(ctx context.Context, store *artifacts.Store, root artifacts.URI, opts VerifyOptions) ([]Problem, error) {
	snap, err := walk(ctx, store, root)
	if err != nil {
		return nil, err
	}
	problems := slices.Clone(snap.problems)
	damaged := map[string]bool{} // sidecars that no longer parse
	for _, p := range snap.problems {
		damaged[p.URI] = true
	}
	// lookup finds the digest now at uri: from the walk, or by opening it
	// when the link leaves root.
	outside := map[string]*artifacts.Sidecar{}
	lookup := func(uri string) (*artifacts.Sidecar, error) {
		if sc, ok := snap.sidecars[uri]; ok {
			return sc, nil
		}
		if sc, ok := outside[uri]; ok {
			return sc, nil
		}
		var sc *artifacts.Sidecar
		u, err := artifacts.ParseURI(uri)
		if err == nil && below(uri, root) {
			// Below root and not found by the walk: gone (or unreadable, which the walk reported).
		} else if opts.RootOnly {
			return nil, errOutside
		} else if err == nil {
			a, err := store.Open(ctx, u, "")
			switch {
			case err == nil:
				sc = a.Sidecar
			case errors.Is(err, artifacts.ErrNotFound), errors.Is(err, artifacts.ErrNotCommitted), errors.Is(err, artifacts.ErrInvalid), errors.Is(err, artifacts.ErrIntegrity):
			default:
				return nil, err
			}
		}
		outside[uri] = sc
		return sc, nil
	}
	check := func(referrer string, link artifacts.Input, what string) error {
		sc, err := lookup(link.URI)
		if err == errOutside {
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case sc == nil && damaged[link.URI]:
			problems = append(problems, Problem{URI: link.URI, Kind: ProblemTampered, Referrer: referrer,
				Detail: fmt.Sprintf("%s %q recorded with digest %s; the sidecar there is damaged", what, link.Name, link.Digest)})
		case sc == nil:
			problems = append(problems, Problem{URI: link.URI, Kind: ProblemMissing, Referrer: referrer,
				Detail: fmt.Sprintf("%s %q recorded with digest %s; no committed artifact there", what, link.Name, link.Digest)})
		case sc.Digest != link.Digest:
			problems = append(problems, Problem{URI: link.URI, Kind: ProblemDigest, Referrer: referrer,
				Detail: fmt.Sprintf("%s %q recorded with digest %s; the artifact there has %s", what, link.Name, link.Digest, sc.Digest)})
		}
		return nil
	}
	for _, loc := range slices.Sorted(maps.Keys(snap.sidecars)) {
		sc := snap.sidecars[loc]
		for _, in := range sc.Inputs {
			if err := check(loc, in, "input"); err != nil {
				return nil, err
			}
		}
		if opts.SkipPayload {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		u, err := artifacts.ParseURI(loc)
		if err != nil {
			return nil, err
		}
		a, err := store.Open(ctx, u, "")
		if err == nil {
			err = a.Verify(ctx)
		}
		if err != nil {
			if !errors.Is(err, artifacts.ErrIntegrity) && !errors.Is(err, artifacts.ErrNotFound) && !errors.Is(err, artifacts.ErrInvalid) {
				return nil, err
			}
			problems = append(problems, Problem{URI: loc, Kind: ProblemTampered, Detail: err.Error()})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(snap.executions)) {
		e := snap.executions[id]
		ref := "execution " + id
		for _, in := range e.Inputs {
			if err := check(ref, in, "input"); err != nil {
				return nil, err
			}
		}
		if e.Status == artifacts.StatusFailed {
			continue // a failed run's outputs were never committed
		}
		for _, out := range e.Outputs {
			if err := check(ref, out, "output"); err != nil {
				return nil, err
			}
		}
	}
	slices.SortStableFunc(problems, func(a, b Problem) int {
		if c := strings.Compare(a.URI, b.URI); c != 0 {
			return c
		}
		return strings.Compare(a.Referrer, b.Referrer)
	})
	return problems, nil
}
