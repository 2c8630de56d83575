package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mlsteps/mlsteps/artifacts"
	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestKilledImportLeavesNoArtifact SIGKILLs a real `mlsteps import` at
// several points of its run and reads the prefix back: it is either not
// committed, or committed whole (the kill came after the commit).
func TestKilledImportLeavesNoArtifact(t *testing.T) {
	bin := testenv.Binary(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "zipcodes-10x.csv")
	testenv.ReplicateCSV(t, testenv.VegaData(t, "zipcodes.csv"), src, 10)
	args := func(root string) []string {
		return []string{"--log-format", "json", "import", "--source", src, "--out-root", "file://" + root, "--rows-per-part", "40000"}
	}

	// A full run first, to spread the kills over the real duration.
	start := time.Now()
	if out, err := exec.Command(bin, args(filepath.Join(dir, "full"))...).CombinedOutput(); err != nil {
		t.Fatalf("full run: %v\n%s", err, out)
	}
	full := time.Since(start)
	t.Logf("a whole import takes %v", full)

	store := artifacts.NewStore()
	defer store.Close()
	ctx := context.Background()
	uncommitted := 0
	for i, frac := range []float64{0.05, 0.2, 0.4, 0.6, 0.8, 0.95} {
		root := filepath.Join(dir, fmt.Sprintf("kill-%d", i))
		cmd := exec.Command(bin, args(root)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(frac * float64(full)))
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		killed := err != nil
		u := artifacts.MustParseURI("file://" + root + "/examples")
		a, err := store.Open(ctx, u, artifacts.TypeDataset)
		switch {
		case err == nil:
			if killed {
				// Killed after the commit: what is there must be whole.
				t.Logf("kill at %.0f%%: already committed", frac*100)
			}
			if err := a.Verify(ctx); err != nil {
				t.Errorf("kill at %.0f%%: committed artifact fails verification: %v", frac*100, err)
			}
		case errors.Is(err, artifacts.ErrNotCommitted), errors.Is(err, artifacts.ErrNotFound):
			uncommitted++
			t.Logf("kill at %.0f%%: %v", frac*100, err)
		default:
			t.Errorf("kill at %.0f%%: unexpected error %v", frac*100, err)
		}
	}
	if uncommitted < 3 {
		t.Errorf("only %d of the kills landed before the commit; the test did not exercise a half-written artifact", uncommitted)
	}
}
