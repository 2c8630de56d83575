package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Python runs script with Debian's /usr/bin/python3 (scikit-learn and
// numpy) and decodes its JSON stdout into out; the test skips (fails
// under CI) when python3-sklearn is missing.
func Python(t testing.TB, script string, out any, env ...string) {
	t.Helper()
	const python = "/usr/bin/python3"
	if err := exec.Command(python, "-c", "import sklearn, numpy").Run(); err != nil {
		Missing(t, "%s with scikit-learn is not installed (apt install python3-sklearn)", python)
		return
	}
	cmd := exec.Command(python, "-c", script)
	cmd.Env = append(append(os.Environ(), "PYTHONHASHSEED=0", "OMP_NUM_THREADS=1"), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	data, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("python output %q: %v", data, err)
	}
}

// RenderDOM opens html in headless Chromium and returns the DOM after
// load. A probe script is inserted before </head>; it records script
// errors in the body's data-errors attribute and may set other data-
// attributes for the test to read. The test fails on console errors or
// recorded script errors, and skips (fails under CI) without chromium.
func RenderDOM(t testing.TB, html []byte, probe string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		Missing(t, "chromium (Debian package chromium) is not installed")
		return ""
	}
	script := `<script>window.addEventListener("error",e=>{document.body.setAttribute("data-errors",(document.body.getAttribute("data-errors")||"")+e.message+";")});` +
		probe + `</script>`
	page := bytes.Replace(html, []byte("</head>"), []byte(script+"</head>"), 1)
	dir := t.TempDir()
	path := filepath.Join(dir, "report.html")
	if err := os.WriteFile(path, page, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--enable-logging=stderr", "--v=0", "--dump-dom", "file://"+path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	dom := stdout.String()
	if i := strings.Index(dom, `data-errors="`); i >= 0 {
		t.Errorf("script errors: %.300s", dom[i:])
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(line, "CONSOLE") || strings.Contains(line, "Uncaught") {
			t.Errorf("console: %s", line)
		}
	}
	return dom
}
