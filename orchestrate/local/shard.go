package local

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mlsteps/mlsteps/steps/step"
)

// runSharded runs a step as n shards, child processes at once (at most
// Parallelism), each retried alone per the step's retries; when every
// shard succeeded it runs the merge over their partial outputs. The
// step's result is the merge's, with each shard's under Shards.
func (r *runner) runSharded(ctx context.Context, t task, n int, sr *StepResult) {
	sr.Shards = make([]*StepResult, n)
	sem := make(chan struct{}, r.opts.Parallelism)
	var wg sync.WaitGroup
	for i := range n {
		shard := step.Shard{Index: i, Count: n}
		st := t
		st.label = fmt.Sprintf("%s.shard-%04d", t.step, i)
		st.extra = []string{"--shard", shard.String()}
		res := &StepResult{Name: st.label, Step: t.typ}
		sr.Shards[i] = res
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			start := time.Now()
			r.runTask(ctx, st, res)
			res.Duration = time.Since(start)
			r.opts.Logger.Info("shard ended", "step", t.step, "shard", shard.String(), "status", res.Status, "attempts", res.Attempts, "duration", res.Duration.Round(time.Millisecond).String())
		})
	}
	wg.Wait()
	for i, res := range sr.Shards {
		if res.Status != Succeeded && res.Status != Cached {
			sr.Status, sr.Reason, sr.LogFile = Failed, fmt.Sprintf("shard %d of %d %s: %s", i, n, res.Status, res.Reason), res.LogFile
			if res.Status == Gated {
				// A shard's gate speaks for its share only; the merge
				// applies it to the whole, so a gated shard is an error.
				sr.Reason = fmt.Sprintf("shard %d of %d said no on its own share: %s", i, n, res.Reason)
			}
			return
		}
	}
	m := t
	m.label = t.step + ".merge"
	m.inputs = nil
	for _, name := range outputNames(sr.Shards[0]) {
		for _, res := range sr.Shards {
			m.extra = append(m.extra, "--merge", name+"="+res.Outputs[name])
		}
	}
	start := time.Now()
	r.runTask(ctx, m, sr)
	sr.MergeDuration = time.Since(start)
}

func outputNames(res *StepResult) []string { return sortedKeys(res.Outputs) }
