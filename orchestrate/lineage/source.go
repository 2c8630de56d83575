package lineage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mlsteps/mlsteps/artifacts"
)

// Source answers the few questions a lineage query asks. The blob walk
// (NewBlobSource) and the SQL index (Index.Source) implement it over the
// same records, so every query gives the same answer from either.
type Source interface {
	// Sidecar returns the sidecar committed at uri (a canonical URI
	// string), or nil when none is known there.
	Sidecar(ctx context.Context, uri string) (*artifacts.Sidecar, error)
	// Execution returns the record of execution id, or nil when unknown.
	Execution(ctx context.Context, id string) (*artifacts.Execution, error)
	// Consumers returns the ids, sorted, of the executions whose inputs
	// include the artifact (uri, digest).
	Consumers(ctx context.Context, uri, digest string) ([]string, error)
	// Producers returns the ids, sorted, of the executions whose outputs
	// include the artifact (uri, digest): its producer and the cache hits
	// that reused it.
	Producers(ctx context.Context, uri, digest string) ([]string, error)
}

// CanonicalURI is the form lineage keys artifacts by: the parsed URI,
// redacted, as the harness writes it into inputs and outputs.
func CanonicalURI(raw string) (string, error) {
	u, err := artifacts.ParseURI(raw)
	if err != nil {
		return "", err
	}
	return artifacts.Redact(u.String()), nil
}

// BlobSource answers from the blob store alone. With a root it lists every
// sidecar and execution record below the root once, on first use; without
// one it can only follow sidecars (upstream), opening them as it goes.
type BlobSource struct {
	store *artifacts.Store
	root  *artifacts.URI

	once sync.Once
	err  error
	snap *snapshot

	// Without a root: where each producer's record should be, learnt from
	// the sidecars read (a step writes its record below the folder holding
	// its outputs when run with --out-root).
	mu        sync.Mutex
	recordDir map[string]artifacts.URI
}

// NewBlobSource returns a source over store; root may be nil.
func NewBlobSource(store *artifacts.Store, root *artifacts.URI) *BlobSource {
	return &BlobSource{store: store, root: root}
}

// snapshot is every record read by a walk, keyed for the queries.
type snapshot struct {
	sidecars   map[string]*artifacts.Sidecar // by location URI
	executions map[string]*artifacts.Execution
	consumers  map[string][]string // by uri+"@"+digest
	producers  map[string][]string
	// problems are records that could not be read: verify reports them.
	problems []Problem
}

func edgeKey(uri, digest string) string { return uri + "@" + digest }

func (s *BlobSource) load(ctx context.Context) (*snapshot, error) {
	if s.root == nil {
		return nil, nil
	}
	s.once.Do(func() { s.snap, s.err = walk(ctx, s.store, *s.root) })
	return s.snap, s.err
}

// walk reads every sidecar and execution record below root.
func walk(ctx context.Context, store *artifacts.Store, root artifacts.URI) (*snapshot, error) {
	snap := &snapshot{sidecars: map[string]*artifacts.Sidecar{}, executions: map[string]*artifacts.Execution{},
		consumers: map[string][]string{}, producers: map[string][]string{}}
	var entries []artifacts.Entry
	err := store.Walk(ctx, root, func(e artifacts.Entry) error {
		if e.IsSidecar() || e.IsExecutionRecord() {
			entries = append(entries, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	recs, err := readRecords(ctx, store, entries)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		switch {
		case r.problem != nil:
			snap.problems = append(snap.problems, *r.problem)
		case r.sidecar != nil:
			snap.sidecars[r.location] = r.sidecar
		case r.execution != nil:
			snap.addExecution(r.execution)
		}
	}
	for k := range snap.consumers {
		snap.consumers[k] = sortedUnique(snap.consumers[k])
	}
	for k := range snap.producers {
		snap.producers[k] = sortedUnique(snap.producers[k])
	}
	return snap, nil
}

func (snap *snapshot) addExecution(e *artifacts.Execution) {
	snap.executions[e.ID] = e
	for _, in := range e.Inputs {
		k := edgeKey(in.URI, in.Digest)
		snap.consumers[k] = append(snap.consumers[k], e.ID)
	}
	for _, out := range e.Outputs {
		k := edgeKey(out.URI, out.Digest)
		snap.producers[k] = append(snap.producers[k], e.ID)
	}
}

func sortedUnique(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// record is one decoded sidecar or execution record.
type record struct {
	entry     artifacts.Entry
	location  string // the artifact's URI (sidecars) or the record's URI
	sidecar   *artifacts.Sidecar
	execution *artifacts.Execution
	raw       []byte
	problem   *Problem
}

// readRecords reads entries with a few readers at once (object stores answer
// each read slowly but in parallel); the result keeps the entries' order.
func readRecords(ctx context.Context, store *artifacts.Store, entries []artifacts.Entry) ([]record, error) {
	const workers = 8
	out := make([]record, len(entries))
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := readRecord(ctx, store, entries[i])
				if err != nil {
					errs <- err
					return
				}
				out[i] = r
			}
		}()
	}
	var err error
feed:
	for i := range entries {
		select {
		case next <- i:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errs)
	return out, errors.Join(err, <-errs)
}

// readRecord reads one blob. A record that does not decode is a problem
// to report, not a failure of the whole walk; a read error is a failure.
func readRecord(ctx context.Context, store *artifacts.Store, e artifacts.Entry) (record, error) {
	data, err := store.ReadAll(ctx, e.URI)
	if errors.Is(err, artifacts.ErrNotFound) {
		// Deleted between the listing and the read.
		return record{entry: e, problem: &Problem{URI: artifacts.Redact(e.URI.String()), Kind: ProblemMissing, Detail: "deleted while listing"}}, nil
	}
	if err != nil {
		return record{}, err
	}
	return decodeRecord(e, data), nil
}

func decodeRecord(e artifacts.Entry, data []byte) record {
	r := record{entry: e, raw: data}
	if e.IsSidecar() {
		r.location = artifacts.Redact(e.URI.Parent().String())
		sc, err := artifacts.ParseSidecar(data)
		if err != nil {
			r.problem = &Problem{URI: r.location, Kind: ProblemTampered, Detail: err.Error()}
			return r
		}
		r.sidecar = sc
		return r
	}
	r.location = artifacts.Redact(e.URI.String())
	var ex artifacts.Execution
	if err := json.Unmarshal(data, &ex); err != nil || ex.ID == "" {
		detail := "execution record without an id"
		if err != nil {
			detail = "execution record: " + err.Error()
		}
		r.problem = &Problem{URI: r.location, Kind: ProblemUnreadable, Detail: detail}
		return r
	}
	r.execution = &ex
	return r
}

// Sidecar implements Source.
func (s *BlobSource) Sidecar(ctx context.Context, uri string) (*artifacts.Sidecar, error) {
	snap, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if snap != nil {
		return snap.sidecars[uri], nil
	}
	u, err := artifacts.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	a, err := s.store.Open(ctx, u, "")
	if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrNotCommitted) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lineage: %w", err)
	}
	if p := a.Producer; p != nil && p.ExecutionID != "" {
		s.mu.Lock()
		if s.recordDir == nil {
			s.recordDir = map[string]artifacts.URI{}
		}
		s.recordDir[p.ExecutionID] = u.Parent()
		s.mu.Unlock()
	}
	return a.Sidecar, nil
}

// Execution implements Source.
func (s *BlobSource) Execution(ctx context.Context, id string) (*artifacts.Execution, error) {
	snap, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	if snap != nil {
		return snap.executions[id], nil
	}
	s.mu.Lock()
	dir, ok := s.recordDir[id]
	s.mu.Unlock()
	if !ok {
		return nil, nil
	}
	e, err := s.store.ReadExecution(ctx, dir, id)
	if errors.Is(err, artifacts.ErrNotFound) || errors.Is(err, artifacts.ErrInvalid) {
		return nil, nil // the sidecars still tell the story
	}
	return e, err
}

// Consumers implements Source.
func (s *BlobSource) Consumers(ctx context.Context, uri, digest string) ([]string, error) {
	snap, err := s.load(ctx)
	if err != nil || snap == nil {
		return nil, err
	}
	return snap.consumers[edgeKey(uri, digest)], nil
}

// Producers implements Source.
func (s *BlobSource) Producers(ctx context.Context, uri, digest string) ([]string, error) {
	snap, err := s.load(ctx)
	if err != nil || snap == nil {
		return nil, err
	}
	return snap.producers[edgeKey(uri, digest)], nil
}

// below reports whether the URI uri lies under root (same store, path
// below root's), whatever driver options their queries carry.
func below(uri string, root artifacts.URI) bool {
	u, err := artifacts.ParseURI(uri)
	if err != nil || u.Scheme != root.Scheme || u.Bucket != root.Bucket {
		return false
	}
	return root.Path == "" || strings.HasPrefix(u.Path, root.Path+"/")
}
