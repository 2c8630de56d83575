package step

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/mlsteps/mlsteps/artifacts"
)

// ShardBy says how a shardable step splits its work.
type ShardBy string

// The ways a step's work splits.
const (
	// ShardByParts gives each shard a contiguous share of the part files
	// of a Dataset input (over its splits, in order).
	ShardByParts ShardBy = "parts"
	// ShardByKey gives each shard a contiguous share of the sorted keys of
	// the rows (one group of keys per shard).
	ShardByKey ShardBy = "key"
)

// Sharding declares, in a Spec, that a step's work splits across
// processes and how the partial outputs merge back into what one process
// would have written.
type Sharding struct {
	By ShardBy `json:"by"`
	// Input names the Dataset input whose parts or keys are split.
	Input string `json:"input"`
	// Check, when set, refuses parameter values with which the step cannot
	// shard (train shards only with --per-key). It gets the parameters as
	// a pipeline file gives them, as text; a parameter left out is absent.
	Check func(params map[string]string) error `json:"-"`
	// Merge combines the partials: Run.Partials(output) lists each
	// output's partial artifacts in shard order, checked to be one
	// complete set; Merge writes every output through Run.Output.
	Merge func(ctx context.Context, r *Run) error `json:"-"`
}

// Shard is one share of a sharded run: Index of Count, from 0.
type Shard struct {
	Index int `json:"index"`
	Count int `json:"count"`
}

// ParseShard reads "I/N" (shard I of N, 0 ≤ I < N).
func ParseShard(text string) (Shard, error) {
	i, n, ok := strings.Cut(strings.TrimSpace(text), "/")
	index, err1 := strconv.Atoi(i)
	count, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || count < 1 || index < 0 || index >= count {
		return Shard{}, Usagef("--shard %q: want I/N with 0 <= I < N (shard I of N)", text)
	}
	return Shard{Index: index, Count: count}, nil
}

func (s Shard) String() string { return fmt.Sprintf("%d/%d", s.Index, s.Count) }

// Range is the shard's contiguous share [lo, hi) of n items: shard sizes
// differ by at most one, and shard order is item order, so concatenating
// the shards' outputs in shard order keeps the items' order.
func (s Shard) Range(n int) (lo, hi int) {
	return s.Index * n / s.Count, (s.Index + 1) * n / s.Count
}

// Shards lists every shard of a run split count ways, as orchestrators
// iterate over them ("0/3", "1/3", "2/3").
func Shards(count int) []string {
	out := make([]string, count)
	for i := range out {
		out[i] = Shard{Index: i, Count: count}.String()
	}
	return out
}

// Properties the harness writes on sharded and merged outputs.
const (
	// PropShard, on a partial output, is its ShardInfo.
	PropShard = "shard"
	// PropMerged, on a merged output, is its MergeInfo.
	PropMerged = "merged"
)

// ShardInfo marks a partial output: which shard wrote it, which items of
// how many it covers, and the plan (a digest of the step, its version,
// the binary, the parameters and the inputs' digests, the shard left
// out): partials of one run share it, so the merge refuses a mixed set.
type ShardInfo struct {
	Index int     `json:"index"`
	Count int     `json:"count"`
	By    ShardBy `json:"by"`
	Plan  string  `json:"plan"`
	// First and End bound the items covered, [First, End) of Total.
	First       int    `json:"first"`
	End         int    `json:"end"`
	Total       int    `json:"total"`
	ExecutionID string `json:"execution_id"`
}

// MergeInfo marks a merged output: how many partials made it, and their plan.
type MergeInfo struct {
	Shards int    `json:"shards"`
	Plan   string `json:"plan"`
	Total  int    `json:"total"`
}

// Shard returns the share this run must do, when it runs as a shard.
func (r *Run) Shard() (Shard, bool) {
	if r.shard == nil {
		return Shard{}, false
	}
	return *r.shard, true
}

// ShardCovers records which items a shard did ([lo, hi) of total: part
// files or keys); the harness writes it on every partial output, and the
// merge checks the partials cover every item once. A step running as a
// shard must call it.
func (r *Run) ShardCovers(lo, hi, total int) {
	r.cover = &[3]int{lo, hi, total}
}

// Merging reports whether this run merges partials rather than working.
func (r *Run) Merging() bool { return r.partials != nil }

// Partials returns an output's partial artifacts, in shard order, when
// merging.
func (r *Run) Partials(output string) []*artifacts.Artifact {
	if _, ok := r.spec.Output(output); !ok {
		panic(fmt.Sprintf("step %s: no output %q declared", r.spec.Name, output))
	}
	return r.partials[output]
}

// ParseMergeList reads the partial URIs given for one output: a JSON list
// (what Argo aggregates from a fan-out) or one URI.
func ParseMergeList(text string) ([]string, error) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "[") {
		return []string{text}, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(text), &list); err != nil {
		return nil, fmt.Errorf("want a JSON list of URIs: %v", err)
	}
	return list, nil
}

// checkSharding refuses shard and merge invocations the step cannot take.
func (r *Run) checkSharding(inv Invocation) error {
	if inv.Shard == nil && inv.Merge == nil {
		return nil
	}
	spec := r.spec
	if spec.Shard == nil {
		return Usagef("%s does not shard: --shard and --merge are for steps that declare how their work splits", spec.Name)
	}
	if inv.Shard != nil && inv.Merge != nil {
		return Usagef("give --shard (run one shard) or --merge (merge the shards), not both")
	}
	if s := inv.Shard; s != nil {
		if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
			return Usagef("--shard %d/%d: want I/N with 0 <= I < N", s.Index, s.Count)
		}
		if spec.Shard.Check != nil {
			if err := spec.Shard.Check(r.paramTexts()); err != nil {
				return BadInput(fmt.Errorf("--shard: %w", err))
			}
		}
		r.shard = s
		return nil
	}
	if len(inv.Inputs) > 0 {
		return Usagef("--merge takes the partial outputs only, no --in")
	}
	for name := range inv.Merge {
		if _, ok := spec.Output(name); !ok {
			return Usagef("--merge %s: %s has no output %q (outputs: %s)", name, spec.Name, name, portNames(spec.Outputs))
		}
	}
	return nil
}

// paramTexts renders the resolved parameters as text, for Check.
func (r *Run) paramTexts() map[string]string {
	out := map[string]string{}
	for name, v := range r.params {
		if v != nil {
			out[name] = fmt.Sprint(v)
		}
	}
	return out
}

// openPartials opens and checks the partials of a merge: every output has
// the same number of them, each says which shard of how many it is, the
// shards are each there once, they share one plan and one execution per
// shard, and their items cover the whole once.
func (r *Run) openPartials(ctx context.Context, merge map[string][]string) error {
	spec := r.spec
	r.partials = map[string][]*artifacts.Artifact{}
	var (
		n     = -1
		plan  string
		total int
		execs = map[int]string{}
	)
	for _, port := range spec.Outputs {
		uris, ok := merge[port.Name]
		if !ok || len(uris) == 0 {
			return Usagef("--merge %s=URI,…: the partials of every output are needed (outputs: %s)", port.Name, portNames(spec.Outputs))
		}
		if n >= 0 && len(uris) != n {
			return BadInput(fmt.Errorf("merge: %d partials of %s but %d of %s", len(uris), port.Name, n, spec.Outputs[0].Name))
		}
		n = len(uris)
		parts := make([]*artifacts.Artifact, len(uris))
		infos := make([]ShardInfo, len(uris))
		for i, raw := range uris {
			u, err := artifacts.ParseURI(raw)
			if err != nil {
				return inputError(port.Name+" partial", err)
			}
			a, err := r.env.Store.Open(ctx, u, port.Type)
			if err != nil {
				return inputError(port.Name+" partial", err)
			}
			info, err := artifacts.Property[ShardInfo](a.Sidecar, PropShard)
			if err != nil {
				return BadInput(fmt.Errorf("merge: %s is not a shard's partial output: %w", artifacts.Redact(raw), err))
			}
			if info.By != spec.Shard.By || info.Count < 1 {
				return BadInput(fmt.Errorf("merge: %s was sharded by %q into %d, not by %s", artifacts.Redact(raw), info.By, info.Count, spec.Shard.By))
			}
			parts[i], infos[i] = a, info
		}
		// Shard order, whatever order the orchestrator listed them in.
		order := make([]int, len(parts))
		for i := range order {
			order[i] = i
		}
		slices.SortStableFunc(order, func(a, b int) int { return infos[a].Index - infos[b].Index })
		sorted := make([]*artifacts.Artifact, len(parts))
		for k, i := range order {
			info := infos[i]
			where := artifacts.Redact(parts[i].Location().String())
			switch {
			case info.Count != len(parts):
				return BadInput(fmt.Errorf("merge: incomplete set: %s is shard %d of %d, but %d partials of %s were given", where, info.Index, info.Count, len(parts), port.Name))
			case info.Index != k:
				if info.Index < k {
					return BadInput(fmt.Errorf("merge: shard %d of %s is given twice (%s)", info.Index, port.Name, where))
				}
				return BadInput(fmt.Errorf("merge: incomplete set: shard %d of %d of %s is missing", k, len(parts), port.Name))
			case plan == "" && k == 0 && port.Name == spec.Outputs[0].Name:
				plan, total = info.Plan, info.Total
			case info.Plan != plan:
				return BadInput(fmt.Errorf("merge: mixed set: %s (shard %d) comes from another run: plan %.12s, not %.12s (other inputs, parameters or binary)", where, info.Index, info.Plan, plan))
			}
			if info.Total != total {
				return BadInput(fmt.Errorf("merge: %s (shard %d) covers items of %d, the others of %d", where, info.Index, info.Total, total))
			}
			if want, ok := execs[info.Index]; ok && want != info.ExecutionID {
				return BadInput(fmt.Errorf("merge: shard %d's %s comes from execution %s, its other outputs from %s", info.Index, port.Name, info.ExecutionID, want))
			}
			execs[info.Index] = info.ExecutionID
			wantFirst := 0
			if k > 0 {
				wantFirst = infos[order[k-1]].End
			}
			if info.First != wantFirst || info.End < info.First || (k == len(parts)-1 && info.End != total) {
				return BadInput(fmt.Errorf("merge: shard %d of %s covers items [%d, %d) of %d: the shards do not cover every item once", info.Index, port.Name, info.First, info.End, total))
			}
			sorted[k] = parts[i]
		}
		r.partials[port.Name] = sorted
	}
	r.merged = &MergeInfo{Shards: n, Plan: plan, Total: total}
	// Lineage: every partial, and the inputs the shards read.
	if r.extra == nil {
		r.extra = map[string]*artifacts.Artifact{}
	}
	seen := map[string]bool{}
	for _, port := range spec.Outputs {
		for i, a := range r.partials[port.Name] {
			r.extra[fmt.Sprintf("%s.shard-%04d", port.Name, i)] = a
			for _, in := range a.Inputs {
				if key := in.Name + "\x00" + in.Digest; !seen[key] {
					seen[key] = true
					r.upstream = append(r.upstream, in)
				}
			}
		}
	}
	return nil
}

// shardProperty is what the harness writes on a partial output.
func (r *Run) shardProperty(plan string) (ShardInfo, error) {
	if r.cover == nil {
		return ShardInfo{}, errors.New("step " + r.spec.Name + " ran as a shard but did not record which items it covered (Run.ShardCovers)")
	}
	return ShardInfo{Index: r.shard.Index, Count: r.shard.Count, By: r.spec.Shard.By, Plan: plan,
		First: r.cover[0], End: r.cover[1], Total: r.cover[2], ExecutionID: r.id}, nil
}
