// Command publish sends the penguins to a NATS JetStream subject, one
// example per message ({"id": "p-17", "features": {...}}), plus a few
// malformed messages that must come back as dead letters. It creates the
// JetStream stream holding PREFIX.> when it is missing.
//
//	go run ./examples/streaming/publish --prefix penguins --file .cache/vega/data/penguins.json
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	server := flag.String("server", envOr("NATS_SERVER_URL", nats.DefaultURL), "the NATS server")
	prefix := flag.String("prefix", "penguins", "subjects are PREFIX.in, PREFIX.out and PREFIX.dead, in a stream of PREFIX.>")
	file := flag.String("file", ".cache/vega/data/penguins.json", "a JSON array of examples")
	malformed := flag.Int("malformed", 3, "malformed messages mixed in")
	flag.Parse()
	if err := publish(*server, *prefix, *file, *malformed); err != nil {
		log.Fatal(err)
	}
}

func publish(server, prefix, file string, malformed int) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var rows []map[string]any
	if err := json.Unmarshal(data, &rows); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	nc, err := nats.Connect(server, nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect %s: %w", server, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stream := StreamName(prefix)
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	subject := prefix + ".in"
	send := func(body []byte) error {
		_, err := js.PublishAsync(subject, body)
		return err
	}
	bad := 0
	for i, row := range rows {
		body, err := json.Marshal(map[string]any{"id": fmt.Sprintf("p-%d", i), "features": row})
		if err != nil {
			return err
		}
		if err := send(body); err != nil {
			return err
		}
		if bad < malformed && i%100 == 50 {
			if err := send([]byte(`{"id": "broken-` + fmt.Sprint(bad) + `", "features": `)); err != nil {
				return err
			}
			bad++
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("publishing to %s did not complete: %w", subject, ctx.Err())
	}
	fmt.Printf("published %d examples and %d malformed messages to %s (stream %s)\n", len(rows), bad, subject, stream)
	return nil
}

// StreamName is the JetStream stream of a prefix (stream names take no dots).
func StreamName(prefix string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(prefix))
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
