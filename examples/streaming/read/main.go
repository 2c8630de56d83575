// Command read collects the answers of a streaming `mlsteps infer`: the
// results on PREFIX.out and the dead letters on PREFIX.dead, one per input
// after dropping redeliveries by message id, until it has --want of them.
// It prints the answers by model and label and each dead letter's reason.
//
//	go run ./examples/streaming/read --prefix penguins --want 347
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// answer is a result or a dead letter, as mlsteps publishes them.
type answer struct {
	ID        any            `json:"id"`
	MessageID string         `json:"message_id"`
	ModelID   string         `json:"model_id"`
	Outputs   map[string]any `json:"outputs"`
	Reason    string         `json:"reason"`
	Input     string         `json:"input"`
}

func main() {
	server := flag.String("server", envOr("NATS_SERVER_URL", nats.DefaultURL), "the NATS server")
	prefix := flag.String("prefix", "penguins", "subjects are PREFIX.out and PREFIX.dead")
	want := flag.Int("want", 0, "answers to wait for (inputs published)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	cleanup := flag.Bool("delete-stream", false, "delete the stream PREFIX.> once read")
	flag.Parse()
	if err := read(*server, *prefix, *want, *timeout, *cleanup); err != nil {
		log.Fatal(err)
	}
}

func read(server, prefix string, want int, timeout time.Duration, cleanup bool) error {
	nc, err := nats.Connect(server, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", server, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stream := strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix))
	// One consumer over the whole stream (older servers filter on one
	// subject only); the inputs on PREFIX.in are passed over.
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("read stream %s: %w", stream, err)
	}
	seen := map[string]bool{}
	byModel := map[string]map[string]int{}
	var dead []answer
	for len(seen) < want {
		msg, err := cons.Next(jetstream.FetchMaxWait(time.Until(deadline(ctx))))
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoHeartbeat) {
			return fmt.Errorf("%d of %d answers after %v", len(seen), want, timeout)
		}
		if err != nil {
			return err
		}
		if msg.Subject() != prefix+".out" && msg.Subject() != prefix+".dead" {
			continue
		}
		var a answer
		if err := json.Unmarshal(msg.Data(), &a); err != nil {
			return fmt.Errorf("answer %q: %w", msg.Data(), err)
		}
		if seen[a.MessageID] {
			continue // a redelivery: the consumer died between publishing and acking
		}
		seen[a.MessageID] = true
		if msg.Subject() == prefix+".dead" {
			dead = append(dead, a)
			continue
		}
		label, _ := a.Outputs["label"].(string)
		if byModel[a.ModelID] == nil {
			byModel[a.ModelID] = map[string]int{}
		}
		byModel[a.ModelID][label]++
	}
	results := len(seen) - len(dead)
	fmt.Printf("%d answers: %d results, %d dead letters\n", len(seen), results, len(dead))
	for _, m := range slices.Sorted(maps.Keys(byModel)) {
		var parts []string
		for _, l := range slices.Sorted(maps.Keys(byModel[m])) {
			parts = append(parts, fmt.Sprintf("%s %d", l, byModel[m][l]))
		}
		fmt.Printf("  %s: %s\n", m, strings.Join(parts, ", "))
	}
	for _, d := range dead {
		in := d.Input
		if len(in) > 60 {
			in = in[:60] + "…"
		}
		fmt.Printf("  dead letter %s: %s (input %s)\n", d.MessageID, d.Reason, in)
	}
	if cleanup {
		if err := js.DeleteStream(context.Background(), stream); err != nil {
			return fmt.Errorf("delete stream %s: %w", stream, err)
		}
	}
	return nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
