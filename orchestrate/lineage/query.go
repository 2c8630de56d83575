package lineage

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Direction says which way a query walks from its artifact.
type Direction int

// Directions. The zero value walks upstream.
const (
	Up Direction = iota
	Down
	Both
)

// Options shape a query; the zero value walks upstream without a depth limit.
type Options struct {
	Direction Direction
	// Depth limits the walk to this many executions away from the
	// artifact; 0 means no limit.
	Depth int
}

// ArtifactNode is one artifact version: a URI holding one digest.
type ArtifactNode struct {
	ID     string         `json:"id"`
	URI    string         `json:"uri"`
	Digest string         `json:"digest"`
	Type   artifacts.Type `json:"type,omitempty"`
	Name   string         `json:"name,omitempty"`
	// Producer is the id of the execution that wrote it, when known.
	Producer string    `json:"producer,omitempty"`
	Created  time.Time `json:"created,omitzero"`
	// Missing: no sidecar at URI. Replaced: the sidecar at URI holds
	// another digest (Now), so this version is gone.
	Missing  bool   `json:"missing,omitempty"`
	Replaced bool   `json:"replaced,omitempty"`
	Now      string `json:"now,omitempty"`
}

// ExecutionNode is one step run.
type ExecutionNode struct {
	ID      string `json:"id"`
	Step    string `json:"step"`
	Version string `json:"version"`
	// Build identifies the binary that ran it, when the record has it.
	Build      string         `json:"build,omitempty"`
	Status     string         `json:"status,omitempty"`
	CachedFrom string         `json:"cached_from,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Started    time.Time      `json:"started,omitzero"`
	Ended      time.Time      `json:"ended,omitzero"`
	Host       string         `json:"host,omitempty"`
	// NoRecord: only the artifacts' sidecars tell of this execution; its
	// record was not found.
	NoRecord bool `json:"no_record,omitempty"`
}

// Edge links an artifact to the execution that read it (input) or an
// execution to the artifact it wrote (output). From and To are node ids.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Kind is "input" or "output"; Name is the step's port name.
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Graph is the result of a query: the nodes around Root and the edges
// between them, each list sorted so output is stable.
type Graph struct {
	Root       string           `json:"root"`
	Artifacts  []*ArtifactNode  `json:"artifacts"`
	Executions []*ExecutionNode `json:"executions"`
	Edges      []Edge           `json:"edges"`
}

// ArtifactID is the node id of an artifact version.
func ArtifactID(uri, digest string) string { return "artifact:" + uri + "@" + digest }

// ExecutionID is the node id of an execution.
func ExecutionID(id string) string { return "execution:" + id }

// Artifact returns the artifact node with id, or nil.
func (g *Graph) Artifact(id string) *ArtifactNode {
	i := slices.IndexFunc(g.Artifacts, func(a *ArtifactNode) bool { return a.ID == id })
	if i < 0 {
		return nil
	}
	return g.Artifacts[i]
}

// Execution returns the execution node with id, or nil.
func (g *Graph) Execution(id string) *ExecutionNode {
	i := slices.IndexFunc(g.Executions, func(e *ExecutionNode) bool { return e.ID == id })
	if i < 0 {
		return nil
	}
	return g.Executions[i]
}

// builder accumulates a graph without duplicates.
type builder struct {
	src        Source
	artifacts  map[string]*ArtifactNode
	executions map[string]*ExecutionNode
	records    map[string]*artifacts.Execution // nil value: looked up, none
	edges      map[Edge]bool
}

// Query returns the graph around the artifact at uri: upstream, the
// executions and artifacts that made it; downstream, what was made from
// it. The artifact must be known to src.
func Query(ctx context.Context, src Source, uri string, opts Options) (*Graph, error) {
	uri, err := CanonicalURI(uri)
	if err != nil {
		return nil, err
	}
	sc, err := src.Sidecar(ctx, uri)
	if err != nil {
		return nil, err
	}
	if sc == nil {
		return nil, fmt.Errorf("lineage of %s: %w: no committed artifact there (is it below --root?)", uri, artifacts.ErrNotFound)
	}
	b := &builder{src: src, artifacts: map[string]*ArtifactNode{}, executions: map[string]*ExecutionNode{},
		records: map[string]*artifacts.Execution{}, edges: map[Edge]bool{}}
	root, err := b.artifact(ctx, uri, sc.Digest)
	if err != nil {
		return nil, err
	}
	if opts.Direction == Up || opts.Direction == Both {
		if err := b.up(ctx, root, opts.Depth, map[string]bool{}); err != nil {
			return nil, err
		}
	}
	if opts.Direction == Down || opts.Direction == Both {
		if err := b.down(ctx, root, opts.Depth, map[string]bool{}); err != nil {
			return nil, err
		}
	}
	return b.graph(root.ID), nil
}

// artifact returns the node of (uri, digest), reading its sidecar once.
func (b *builder) artifact(ctx context.Context, uri, digest string) (*ArtifactNode, error) {
	id := ArtifactID(uri, digest)
	if n, ok := b.artifacts[id]; ok {
		return n, nil
	}
	n := &ArtifactNode{ID: id, URI: uri, Digest: digest}
	sc, err := b.src.Sidecar(ctx, uri)
	if err != nil {
		return nil, err
	}
	switch {
	case sc == nil:
		n.Missing = true
	case sc.Digest != digest:
		n.Replaced, n.Now, n.Type = true, sc.Digest, sc.Type
	default:
		n.Type, n.Name, n.Created = sc.Type, sc.Name, sc.Created
		if sc.Producer != nil {
			n.Producer = sc.Producer.ExecutionID
		}
	}
	if n.Producer == "" {
		// No sidecar for this version: the records still say who wrote it.
		ids, err := b.src.Producers(ctx, uri, digest)
		if err != nil {
			return nil, err
		}
		for _, pid := range ids {
			rec, err := b.record(ctx, pid)
			if err != nil {
				return nil, err
			}
			if rec != nil && rec.Status != artifacts.StatusCached {
				n.Producer = pid
				for _, o := range rec.Outputs {
					if o.URI == uri && o.Digest == digest && n.Type == "" {
						n.Type = o.Type
					}
				}
				break
			}
		}
	}
	b.artifacts[id] = n
	return n, nil
}

func (b *builder) record(ctx context.Context, id string) (*artifacts.Execution, error) {
	if rec, ok := b.records[id]; ok {
		return rec, nil
	}
	rec, err := b.src.Execution(ctx, id)
	if err != nil {
		return nil, err
	}
	b.records[id] = rec
	return rec, nil
}

// execution returns the node of execution id. sc, when given, is an
// output's sidecar: it stands in for a missing record.
func (b *builder) execution(ctx context.Context, id string, sc *artifacts.Sidecar) (*ExecutionNode, *artifacts.Execution, error) {
	rec, err := b.record(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	n, ok := b.executions[id]
	if !ok {
		n = &ExecutionNode{ID: ExecutionID(id)}
		switch {
		case rec != nil:
			n.Step, n.Version, n.Build, n.Status, n.CachedFrom = rec.Step, rec.Version, rec.Build, rec.Status, rec.CachedFrom
			n.Parameters, n.Started, n.Ended, n.Host = rec.Parameters, rec.Started, rec.Ended, rec.Host
		case sc != nil && sc.Producer != nil:
			p := sc.Producer
			n.Step, n.Version, n.Parameters, n.Started, n.Ended, n.Host = p.Step, p.Version, p.Parameters, p.Started, p.Ended, p.Host
			n.NoRecord = true
		default:
			n.NoRecord = true
		}
		b.executions[id] = n
	}
	return n, rec, nil
}

func (b *builder) edge(from, to, kind, name string) {
	b.edges[Edge{From: from, To: to, Kind: kind, Name: name}] = true
}

// up adds the producer of a and, recursively, what it read.
func (b *builder) up(ctx context.Context, a *ArtifactNode, depth int, seen map[string]bool) error {
	if seen[a.ID] || a.Producer == "" {
		return nil
	}
	seen[a.ID] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	var sc *artifacts.Sidecar
	if !a.Missing && !a.Replaced {
		var err error
		if sc, err = b.src.Sidecar(ctx, a.URI); err != nil {
			return err
		}
	}
	ex, rec, err := b.execution(ctx, a.Producer, sc)
	if err != nil {
		return err
	}
	b.edge(ex.ID, a.ID, "output", outputName(rec, sc, a))
	inputs := []artifacts.Input(nil)
	switch {
	case rec != nil:
		inputs = rec.Inputs
	case sc != nil:
		inputs = sc.Inputs
	}
	for _, in := range inputs {
		n, err := b.artifact(ctx, in.URI, in.Digest)
		if err != nil {
			return err
		}
		if n.Type == "" {
			n.Type = in.Type
		}
		b.edge(n.ID, ex.ID, "input", in.Name)
		if depth == 1 {
			// What the producer read is shown; who made it is beyond the limit.
			continue
		}
		if err := b.up(ctx, n, max(depth-1, 0), seen); err != nil {
			return err
		}
	}
	return nil
}

func outputName(rec *artifacts.Execution, sc *artifacts.Sidecar, a *ArtifactNode) string {
	if rec != nil {
		for _, o := range rec.Outputs {
			if o.URI == a.URI && o.Digest == a.Digest {
				return o.Name
			}
		}
	}
	if sc != nil {
		return sc.Name
	}
	return a.Name
}

// down adds the executions that read a and, recursively, what they wrote.
func (b *builder) down(ctx context.Context, a *ArtifactNode, depth int, seen map[string]bool) error {
	if seen[a.ID] {
		return nil
	}
	seen[a.ID] = true
	if err := ctx.Err(); err != nil {
		return err
	}
	ids, err := b.src.Consumers(ctx, a.URI, a.Digest)
	if err != nil {
		return err
	}
	for _, id := range ids {
		ex, rec, err := b.execution(ctx, id, nil)
		if err != nil {
			return err
		}
		if rec == nil {
			continue
		}
		for _, in := range rec.Inputs {
			if in.URI == a.URI && in.Digest == a.Digest {
				b.edge(a.ID, ex.ID, "input", in.Name)
			}
		}
		for _, o := range rec.Outputs {
			n, err := b.artifact(ctx, o.URI, o.Digest)
			if err != nil {
				return err
			}
			if n.Type == "" {
				n.Type = o.Type
			}
			b.edge(ex.ID, n.ID, "output", o.Name)
			if depth == 1 {
				continue
			}
			if err := b.down(ctx, n, max(depth-1, 0), seen); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *builder) graph(root string) *Graph {
	g := &Graph{Root: root}
	for _, n := range b.artifacts {
		g.Artifacts = append(g.Artifacts, n)
	}
	for _, n := range b.executions {
		g.Executions = append(g.Executions, n)
	}
	for e := range b.edges {
		g.Edges = append(g.Edges, e)
	}
	slices.SortFunc(g.Artifacts, func(x, y *ArtifactNode) int { return strings.Compare(x.ID, y.ID) })
	slices.SortFunc(g.Executions, func(x, y *ExecutionNode) int { return strings.Compare(x.ID, y.ID) })
	slices.SortFunc(g.Edges, func(x, y Edge) int {
		if c := strings.Compare(x.From, y.From); c != 0 {
			return c
		}
		if c := strings.Compare(x.To, y.To); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	return g
}
