package infer_test

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gocloud.dev/pubsub"
)

// memStream opens mem:// topics named after the test and a collector of
// their answers; send publishes an input.
type memStream struct {
	in           *pubsub.Topic
	c            *collector
	src, out, dl string
}

func openMemStream(t *testing.T) *memStream {
	t.Helper()
	ctx := context.Background()
	name := "mem://" + strings.ReplaceAll(t.Name(), "/", "-") + "-"
	ms := &memStream{src: name + "in", out: name + "out", dl: name + "dead"}
	var err error
	if ms.in, err = pubsub.OpenTopic(ctx, ms.src); err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{ms.out, ms.dl} {
		if _, err := pubsub.OpenTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	results, err := pubsub.OpenSubscription(ctx, ms.out)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := pubsub.OpenSubscription(ctx, ms.dl)
	if err != nil {
		t.Fatal(err)
	}
	ms.c = collect(t, results, dead)
	return ms
}

// up pings until the step answers, as mem:// drops what is sent before
// the step subscribes.
func (ms *memStream) up(t *testing.T) {
	t.Helper()
	for ms.c.pinged.Load() == 0 {
		if err := ms.in.Send(context.Background(), &pubsub.Message{Body: []byte(ping)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (ms *memStream) send(t *testing.T, bodies [][]byte) {
	t.Helper()
	for _, b := range bodies {
		if err := ms.in.Send(context.Background(), &pubsub.Message{Body: b}); err != nil {
			t.Fatal(err)
		}
	}
}

// results maps each answered example id to its result (dead letters left
// out), checking there is one answer per input.
func (ms *memStream) results(t *testing.T, n int) map[string]answer {
	t.Helper()
	ms.c.waitFor(t, n, time.Minute, nil)
	ms.c.mu.Lock()
	defer ms.c.mu.Unlock()
	out := map[string]answer{}
	for _, a := range ms.c.answers {
		if a.dead {
			continue
		}
		var id string
		if err := json.Unmarshal(a.ID, &id); err != nil {
			t.Fatalf("result id %s: %v", a.ID, err)
		}
		out[id] = a
	}
	return out
}

// TestStreamModels: keyed models, A/B arms and a model followed through a
// registry pointer work in a stream as in a batch run.
func TestStreamModels(t *testing.T) {
	e := newEnv(t)
	rows := penguinRows(t)
	bodies, _ := inputs(t, 600)
	mlp, trees := e.model("penguins-mlp.onnx", nil), e.model("penguins-trees.onnx", nil)

	t.Run("keyed", func(t *testing.T) {
		keyed := e.model("penguins-by-island", nil)
		ms := openMemStream(t)
		_, stop := e.runStep("stream-keyed", keyed, streamParams(ms.src, ms.out, ms.dl))
		ms.up(t)
		ms.send(t, bodies)
		res := ms.results(t, len(bodies))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		islands := map[string]int{}
		for id, a := range res {
			island := rows[atoi(t, id)%len(rows)]["Island"].(string)
			if !strings.HasSuffix(a.ModelID, "/"+island) {
				t.Fatalf("example %s from %s answered by %s", id, island, a.ModelID)
			}
			islands[island]++
		}
		if len(islands) != 3 {
			t.Errorf("answers by island %v", islands)
		}
	})

	t.Run("ab", func(t *testing.T) {
		ms := openMemStream(t)
		params := streamParams(ms.src, ms.out, ms.dl)
		params["ab"] = "champion=" + mlp + ":0.8,challenger=" + trees + ":0.2"
		params["ab-key"] = "id"
		_, stop := e.runStep("stream-ab", "", params)
		ms.up(t)
		ms.send(t, bodies)
		res := ms.results(t, len(bodies))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		arms := map[string]int{}
		models := map[string]map[string]bool{}
		for _, a := range res {
			arm, _ := a.Outputs["arm"].(string)
			arms[arm]++
			if models[arm] == nil {
				models[arm] = map[string]bool{}
			}
			models[arm][a.ModelID] = true
		}
		if len(arms) != 2 || arms["champion"] < arms["challenger"]*2 || arms["challenger"] == 0 {
			t.Errorf("answers by arm %v, want about 80/20", arms)
		}
		for arm, ids := range models {
			if len(ids) != 1 {
				t.Errorf("arm %s answered by %v", arm, slices.Collect(maps.Keys(ids)))
			}
		}
	})

	t.Run("watch", func(t *testing.T) {
		pointer := e.root.Join("registry", "penguins", "current")
		bucket, err := e.store.Bucket(context.Background(), pointer)
		if err != nil {
			t.Fatal(err)
		}
		point := func(uri string) {
			if err := bucket.WriteAll(context.Background(), pointer.Path, []byte(`{"uri": "`+uri+`"}`), nil); err != nil {
				t.Fatal(err)
			}
		}
		point(mlp)
		ms := openMemStream(t)
		params := streamParams(ms.src, ms.out, ms.dl)
		params["watch"], params["watch-interval"] = pointer.String(), 50*time.Millisecond
		_, stop := e.runStep("stream-watch", "", params)
		ms.up(t)
		first, second := bodies[:300], bodies[300:]
		ms.send(t, first)
		before := ms.results(t, len(first))
		point(trees)
		// Probe (ids from 1000 on) until an answer comes from the pushed
		// model: the swap happens between batches, at the next poll.
		old := before["1"].ModelID
		for k := 0; ; k++ {
			probe := append([]byte(nil), first[1]...)
			probe = []byte(strings.Replace(string(probe), `"id":"1"`, `"id":"`+strconv.Itoa(1000+k)+`"`, 1))
			ms.send(t, [][]byte{probe})
			res := ms.results(t, len(first)+k+1)
			if res[strconv.Itoa(1000+k)].ModelID != old {
				break
			}
			if k > 600 {
				t.Fatalf("the pushed model never answered")
			}
			time.Sleep(10 * time.Millisecond)
		}
		ms.send(t, second)
		after := ms.results(t, len(bodies))
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		ids := func(m map[string]answer, from, to int) map[string]int {
			out := map[string]int{}
			for id, a := range m {
				if i := atoi(t, id); i >= from && i < to {
					out[a.ModelID]++
				}
			}
			return out
		}
		b, a := ids(before, 0, 300), ids(after, 300, 600)
		if len(b) != 1 || len(a) != 1 || slices.Equal(slices.Collect(maps.Keys(b)), slices.Collect(maps.Keys(a))) {
			t.Errorf("model ids before the push %v, after %v: want one each, different", b, a)
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			t.Fatalf("example id %q", s)
		}
		n = n*10 + int(r-'0')
	}
	return n
}
