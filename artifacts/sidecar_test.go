package artifacts_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mlsteps/mlsteps/artifacts"
)

const validSidecar = `{
  "schema_version": 1,
  "type": "Dataset",
  "name": "examples",
  "uri": "file:///tmp/run/examples",
  "created": "2026-11-23T20:00:00Z",
  "digest": "DIGEST",
  "files": [
    {"path": "Split-train/part-00000.parquet", "size": 10, "sha256": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}
  ],
  "properties": {"row_count": 344}
}`

func sidecarText() string {
	digest := artifacts.ContentDigest([]artifacts.File{{Path: "Split-train/part-00000.parquet", Size: 10, SHA256: strings.Repeat("a", 64)}})
	return strings.Replace(validSidecar, "DIGEST", digest, 1)
}

func TestParseSidecar(t *testing.T) {
	if _, err := artifacts.ParseSidecar([]byte(sidecarText())); err != nil {
		t.Fatalf("valid sidecar: %v", err)
	}
	tests := []struct {
		name, from, to string
		want           error
	}{
		{"unknown field", `"name"`, `"nmae"`, artifacts.ErrInvalid},
		{"unknown type", `"Dataset"`, `"Bogus"`, artifacts.ErrInvalid},
		{"escaping path", `"Split-train/part-00000.parquet"`, `"../../etc/passwd"`, artifacts.ErrInvalid},
		{"absolute path", `"Split-train/part-00000.parquet"`, `"/etc/passwd"`, artifacts.ErrInvalid},
		{"bad hash", strings.Repeat("a", 64), strings.Repeat("g", 64), artifacts.ErrInvalid},
		{"digest mismatch", strings.Repeat("a", 64), strings.Repeat("b", 64), artifacts.ErrIntegrity},
		{"negative size", `"size": 10`, `"size": -1`, artifacts.ErrInvalid},
		{"future version", `"schema_version": 1`, `"schema_version": 2`, artifacts.ErrInvalid},
		{"trailing data", `"row_count": 344}
}`, `"row_count": 344}
}{}`, artifacts.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Replace(sidecarText(), tc.from, tc.to, 1)
			if text == sidecarText() {
				t.Fatalf("replacement %q did not apply", tc.from)
			}
			if _, err := artifacts.ParseSidecar([]byte(text)); !errors.Is(err, tc.want) {
				t.Errorf("ParseSidecar = %v, want %v", err, tc.want)
			}
		})
	}
}

// FuzzParseSidecar: any bytes either fail cleanly or yield a sidecar whose
// every file name is safe and whose digest matches its files.
func FuzzParseSidecar(f *testing.F) {
	f.Add([]byte(sidecarText()))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"schema_version":1,"type":"Model","files":[{"path":"a/../b"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := artifacts.ParseSidecar(data)
		if err != nil {
			return
		}
		for _, file := range sc.Files {
			if artifacts.CheckFileName(file.Path) != nil {
				t.Fatalf("accepted unsafe name %q", file.Path)
			}
		}
		if sc.Digest != artifacts.ContentDigest(sc.Files) {
			t.Fatal("accepted a digest that does not match")
		}
		if _, err := json.Marshal(sc); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseURI(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"file:///tmp/a/b", "file:///tmp/a/b", ""},
		{"file:///tmp/a/b/", "file:///tmp/a/b", ""},
		{"/tmp/a/./b", "file:///tmp/a/b", ""},
		{"mem://store/x", "mem://store/x", ""},
		{"s3://bucket/p/q?endpoint=http://127.0.0.1:9000&region=us-east-1", "s3://bucket/p/q?endpoint=http://127.0.0.1:9000&region=us-east-1", ""},
		{"gs://bucket", "gs://bucket", ""},
		{"ftp://host/x", "", "unknown scheme"},
		{"s3:///nobucket", "", "missing bucket"},
		{"file://host/x", "", "absolute path"},
		{"s3://b/a/../../x", "", `".."`},
		{"", "", "empty"},
	}
	for _, tc := range tests {
		u, err := artifacts.ParseURI(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, artifacts.ErrInvalid) {
				t.Errorf("ParseURI(%q) = %v, want an ErrInvalid mentioning %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || u.String() != tc.want {
			t.Errorf("ParseURI(%q) = %q, %v; want %q", tc.in, u.String(), err, tc.want)
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://user:pw@host/db":                    "postgres://user:xxxxx@host/db",
		"s3://b/p?endpoint=http://h&secret_key=hunter2": "s3://b/p?endpoint=http%3A%2F%2Fh&secret_key=xxxxx",
		"file:///tmp/plain":                             "file:///tmp/plain",
		"azblob://c/p?sig=abc&sv=2020":                  "azblob://c/p?sig=xxxxx&sv=2020",
	} {
		if got := artifacts.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}
