package infer_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/pubsub"

	_ "github.com/mlsteps/mlsteps/steps/infer" // links the drivers
)

// TestCloudDriversLinked opens gcppubsub:// and awssqs:// URLs as the step
// would: no cloud is reachable here, but a linked driver gets past URL
// dispatch (awssqs opens lazily; gcppubsub fails on the missing
// credentials), which "no driver registered" would not.
func TestCloudDriversLinked(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	t.Setenv("AWS_REGION", "us-east-2")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	missing := filepath.Join(t.TempDir(), "no-credentials.json")
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", missing)
	for _, u := range []string{
		"awssqs://sqs.us-east-2.amazonaws.com/123456789012/penguins-results?region=us-east-2",
		"gcppubsub://projects/my-project/topics/penguins-results",
	} {
		top, err := pubsub.OpenTopic(ctx, u)
		if err != nil && strings.Contains(err.Error(), "no driver registered") {
			t.Errorf("%s: %v", u, err)
		}
		if top != nil {
			top.Shutdown(ctx)
		}
		sub, err := pubsub.OpenSubscription(ctx, strings.Replace(u, "/topics/", "/subscriptions/", 1))
		if err != nil && strings.Contains(err.Error(), "no driver registered") {
			t.Errorf("%s subscription: %v", u, err)
		}
		if sub != nil {
			sub.Shutdown(ctx)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("the test's credentials path exists")
	}
}
