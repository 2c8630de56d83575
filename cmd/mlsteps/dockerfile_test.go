package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/internal/testenv"
)

// TestDockerfile checks the image recipe statically (no Docker engine
// here): every base pinned by exact tag or digest, the last stage runs as
// a non-root user with mlsteps as its entrypoint, and no secret is baked in.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		stages     int
		user       string
		entrypoint string
	)
	exact := regexp.MustCompile(`^[\w./-]+(:\d[\w.-]*|@sha256:[0-9a-f]{64})$`)
	secret := regexp.MustCompile(`(?i)(password|secret|token|access_key|api_key)\s*=`)
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(line, "#") {
			continue
		}
		switch strings.ToUpper(fields[0]) {
		case "FROM":
			stages++
			user = "" // USER applies to its stage
			if !exact.MatchString(fields[1]) {
				t.Errorf("line %d: base image %q is not pinned to an exact version or digest", i+1, fields[1])
			}
		case "USER":
			user = fields[1]
		case "ENTRYPOINT":
			entrypoint = strings.Join(fields[1:], " ")
		case "ENV", "ARG", "LABEL":
			if secret.MatchString(line) {
				t.Errorf("line %d: looks like a secret baked into the image: %s", i+1, line)
			}
		}
	}
	if stages < 2 {
		t.Error("want a multi-stage build")
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("the final stage runs as %q; want a non-root user", user)
	}
	if entrypoint != `["mlsteps"]` {
		t.Errorf("ENTRYPOINT %s, want [\"mlsteps\"]", entrypoint)
	}
	ignore, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), ".dockerignore"))
	if err != nil || !strings.Contains(string(ignore), ".cache") {
		t.Error(".dockerignore must keep .cache (fetched data and libraries) out of the build context")
	}
}
