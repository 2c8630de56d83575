package jspubsub_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"gocloud.dev/pubsub"

	"github.com/mlsteps/mlsteps/components/stream/jspubsub"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// subjectPrefix makes a JetStream stream holding PREFIX.> for one test,
// skipping (failing under CI) without a NATS server with JetStream.
func subjectPrefix(t *testing.T) string {
	t.Helper()
	server := os.Getenv("NATS_SERVER_URL")
	if server == "" {
		server = nats.DefaultURL
	}
	nc, err := nats.Connect(server, nats.Timeout(2*time.Second))
	if err != nil {
		testenv.Missing(t, "no NATS server at %s: %v", server, err)
		return ""
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "jspubsub-test-" + hex.EncodeToString(b[:])
	name := strings.ReplaceAll(prefix, "-", "_")
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: name, Subjects: []string{prefix + ".>"}}); err != nil {
		testenv.Missing(t, "NATS at %s: no JetStream: %v", server, err)
	}
	t.Cleanup(func() { js.DeleteStream(context.Background(), name) })
	return prefix
}

// TestRoundTrip sends messages with metadata and receives them; a nacked
// message comes again under the same id, and an acked one does not.
func TestRoundTrip(t *testing.T) {
	prefix := subjectPrefix(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	topic, err := jspubsub.OpenTopic(ctx, "nats://"+prefix+".a")
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Shutdown(ctx)
	sub, err := jspubsub.OpenSubscription(ctx, "nats://"+prefix+".a?consumer=c&ack_wait=1m")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Shutdown(ctx)
	for _, body := range []string{"one", "two"} {
		if err := topic.Send(ctx, &pubsub.Message{Body: []byte(body), Metadata: map[string]string{"k": body}}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := sub.Receive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Body) != "one" || first.Metadata["k"] != "one" || !strings.HasSuffix(first.LoggableID, ":1") {
		t.Fatalf("first message %q %v %s", first.Body, first.Metadata, first.LoggableID)
	}
	first.Nack()
	seen := map[string]int{}
	for len(seen) < 2 || seen[first.LoggableID] < 1 {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", seen, err)
		}
		seen[m.LoggableID]++
		m.Ack()
	}
	if seen[first.LoggableID] != 1 {
		t.Errorf("the nacked message came back %d times under its id", seen[first.LoggableID])
	}
}

// TestURLs rejects URLs the driver cannot serve, saying why.
func TestURLs(t *testing.T) {
	prefix := subjectPrefix(t)
	ctx := context.Background()
	for _, tc := range []struct {
		url, want string
		sub       bool
	}{
		{"nats://" + prefix + ".a", "consumer=NAME is required", true},
		{"nats://" + prefix + ".a?consumer=c&ack_wait=soon", "ack_wait", true},
		{"nats://" + prefix + ".a?consumer=c&color=red", `unknown query parameter "color"`, true},
		{"nats://no-such-subject-" + prefix, "no JetStream stream holds subject", false},
		{"mem://x", "want a nats:// URL", false},
		{"nats://", "names no subject", false},
	} {
		var err error
		if tc.sub {
			_, err = jspubsub.OpenSubscription(ctx, tc.url)
		} else {
			_, err = jspubsub.OpenTopic(ctx, tc.url)
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
	}
}
