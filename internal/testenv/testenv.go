// Package testenv finds the repository's fetched data and tools and starts
// the real services that integration tests talk to. Outside CI a test whose
// service or data is missing skips with a message saying how to get it;
// under CI=true it fails instead, so CI never passes by skipping.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// CI reports whether the tests run under CI=true.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test, or fails it under CI, explaining what is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("CI=true and %s", msg)
	}
	t.Skipf("skipping: %s (run `make setup`)", msg)
}

var rootOnce = sync.OnceValues(func() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
})

// RepoRoot returns the repository root (the folder holding go.mod).
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := rootOnce()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// VegaData returns the path of a file of the vega-datasets package fetched
// by `make setup`, skipping (failing under CI) when it is absent.
func VegaData(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(RepoRoot(t), ".cache", "vega", "data", name)
	if _, err := os.Stat(p); err != nil {
		Missing(t, "vega dataset %s is not fetched", p)
	}
	return p
}

// Binary returns the mlsteps binary for tests that run it as a process:
// $MLSTEPS_BIN when set (the Makefile builds it once per run), else a build
// into a temporary folder shared by the package's tests.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MLSTEPS_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("MLSTEPS_BIN=%s: %v", bin, err)
		}
		return bin
	}
	bin, err := buildOnce()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var buildOnce = sync.OnceValues(func() (string, error) {
	dir, err := rootOnce()
	if err != nil {
		return "", err
	}
	out, err := os.MkdirTemp("", "mlsteps-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(out, "mlsteps")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mlsteps")
	cmd.Dir = dir
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mlsteps: %v\n%s", err, msg)
	}
	return bin, nil
})

// S3 is a running S3-compatible server (versitygw) on loopback.
type S3 struct {
	Endpoint string
	Bucket   string
}

// URL returns the gocloud URL of a prefix in the test bucket.
func (s *S3) URL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&use_path_style=true&region=us-east-1&disable_https=true", s.Bucket, prefix, s.Endpoint)
}

// StartS3 starts versitygw (built by `make setup` into .cache/bin) on a free
// loopback port with a fresh bucket, sets the AWS credentials in the test's
// environment, and stops it when the test ends.
func StartS3(t *testing.T) *S3 {
	t.Helper()
	bin := filepath.Join(RepoRoot(t), ".cache", "bin", "versitygw")
	if _, err := os.Stat(bin); err != nil {
		Missing(t, "the S3-compatible server %s is not built", bin)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var b [4]byte
	rand.Read(b[:])
	bucket := "mlsteps-" + hex.EncodeToString(b[:])
	if err := os.Mkdir(filepath.Join(dir, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	key, secret := "mlstepstest", "mlstepstestsecret"
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "--port", addr, "--region", "us-east-1", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+key, "ROOT_SECRET_KEY="+secret)
	logf, err := os.Create(filepath.Join(t.TempDir(), "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	endpoint := "http://" + addr
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(endpoint)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw did not answer on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_REGION", "us-east-1")
	return &S3{Endpoint: endpoint, Bucket: bucket}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Golden compares data with the golden file at path, rewriting it first
// when update is set (the -update flag of compiler tests).
func Golden(t testing.TB, path string, data []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update)", err)
	}
	if string(data) != string(want) {
		t.Errorf("%s differs from the output; run go test with -update and review the diff\n%s", path, data)
	}
}
