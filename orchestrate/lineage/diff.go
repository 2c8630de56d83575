package lineage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Change is one difference between two artifacts' histories.
type Change struct {
	// Path says where: "type", "step", "version", "parameters.seed",
	// "inputs.examples", and for differences further up
	// "inputs.examples > parameters.split".
	Path string `json:"path"`
	A    any    `json:"a"`
	B    any    `json:"b"`
}

// Diff says how two artifacts came to differ: their types, producing steps
// and versions, parameters and inputs, and, for inputs of the same name
// whose digests differ, the same comparison one level further up (to
// depth levels; 0 means 3).
func Diff(ctx context.Context, src Source, uriA, uriB string, depth int) ([]Change, error) {
	if depth <= 0 {
		depth = 3
	}
	a, err := diffSide(ctx, src, uriA)
	if err != nil {
		return nil, err
	}
	b, err := diffSide(ctx, src, uriB)
	if err != nil {
		return nil, err
	}
	var out []Change
	if err := diff(ctx, src, "", a, b, depth, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// side is what Diff compares of one artifact.
type side struct {
	sc *artifacts.Sidecar
}

func diffSide(ctx context.Context, src Source, raw string) (side, error) {
	uri, err := CanonicalURI(raw)
	if err != nil {
		return side{}, err
	}
	sc, err := src.Sidecar(ctx, uri)
	if err != nil {
		return side{}, err
	}
	if sc == nil {
		return side{}, fmt.Errorf("lineage diff: %s: %w: no committed artifact there", uri, artifacts.ErrNotFound)
	}
	return side{sc: sc}, nil
}

func diff(ctx context.Context, src Source, prefix string, a, b side, depth int, out *[]Change) error {
	add := func(path string, x, y any) {
		*out = append(*out, Change{Path: prefix + path, A: x, B: y})
	}
	if a.sc.Type != b.sc.Type {
		add("type", a.sc.Type, b.sc.Type)
	}
	if a.sc.Digest == b.sc.Digest {
		return nil // same content: nothing upstream can matter
	}
	pa, pb := a.sc.Producer, b.sc.Producer
	if pa == nil {
		pa = &artifacts.Producer{}
	}
	if pb == nil {
		pb = &artifacts.Producer{}
	}
	if pa.Step != pb.Step {
		add("step", pa.Step, pb.Step)
	}
	if pa.Version != pb.Version {
		add("version", pa.Version, pb.Version)
	}
	keys := slices.Sorted(maps.Keys(pa.Parameters))
	for k := range pb.Parameters {
		if _, ok := pa.Parameters[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		x, y := pa.Parameters[k], pb.Parameters[k]
		if !sameJSON(x, y) {
			add("parameters."+k, x, y)
		}
	}
	ins := func(sc *artifacts.Sidecar) map[string]artifacts.Input {
		m := map[string]artifacts.Input{}
		for _, in := range sc.Inputs {
			m[in.Name] = in
		}
		return m
	}
	ia, ib := ins(a.sc), ins(b.sc)
	names := slices.Sorted(maps.Keys(ia))
	for n := range ib {
		if _, ok := ia[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		x, okA := ia[n]
		y, okB := ib[n]
		path := "inputs." + n
		switch {
		case !okA:
			add(path, nil, y.URI+"@"+y.Digest)
		case !okB:
			add(path, x.URI+"@"+x.Digest, nil)
		case x.Digest != y.Digest:
			add(path, x.URI+"@"+x.Digest, y.URI+"@"+y.Digest)
			if depth > 1 {
				sx, errX := src.Sidecar(ctx, x.URI)
				sy, errY := src.Sidecar(ctx, y.URI)
				if errX != nil || errY != nil {
					return fmt.Errorf("lineage diff: %v %v", errX, errY)
				}
				if sx != nil && sy != nil && sx.Digest == x.Digest && sy.Digest == y.Digest {
					if err := diff(ctx, src, prefix+path+" > ", side{sx}, side{sy}, depth-1, out); err != nil {
						return err
					}
				}
			}
		case x.URI != y.URI:
			add(path+" (same digest)", x.URI, y.URI)
		}
	}
	return nil
}

func sameJSON(x, y any) bool {
	a, _ := json.Marshal(x)
	b, _ := json.Marshal(y)
	return string(a) == string(b)
}

// RenderDiff writes changes as text ("path: a -> b" lines) or JSON.
func RenderDiff(w io.Writer, changes []Change, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if changes == nil {
			changes = []Change{}
		}
		return enc.Encode(changes)
	}
	if len(changes) == 0 {
		_, err := fmt.Fprintln(w, "no differences in type, step, version, parameters or inputs")
		return err
	}
	show := func(v any) string {
		if v == nil {
			return "(none)"
		}
		return fmt.Sprint(v)
	}
	for _, c := range changes {
		if _, err := fmt.Fprintf(w, "%s: %s -> %s\n", c.Path, show(c.A), show(c.B)); err != nil {
			return err
		}
	}
	return nil
}
