package artifacts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SchemaVersion is the sidecar format version this package writes and reads.
const SchemaVersion = 1

// Sidecar is the content of artifact.json.
type Sidecar struct {
	SchemaVersion int       `json:"schema_version"`
	Type          Type      `json:"type"`
	Name          string    `json:"name"`
	URI           string    `json:"uri"`
	Created       time.Time `json:"created"`
	// Digest is the content identity: see the package doc.
	Digest     string         `json:"digest"`
	Files      []File         `json:"files"`
	Properties map[string]any `json:"properties,omitempty"`
	Producer   *Producer      `json:"producer,omitempty"`
	Inputs     []Input        `json:"inputs,omitempty"`
}

// File is one payload file of an artifact.
type File struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Producer records the execution that wrote an artifact.
type Producer struct {
	Step        string         `json:"step"`
	Version     string         `json:"version"`
	ExecutionID string         `json:"execution_id"`
	Parameters  map[string]any `json:"parameters,omitempty"`
	Started     time.Time      `json:"started"`
	Ended       time.Time      `json:"ended"`
	Host        string         `json:"host,omitempty"`
	// Gate holds a gate's "no" (its reason) when the producer's gate
	// stopped the pipeline; the artifact is still the verdict, and a cache
	// hit on it says no again.
	Gate string `json:"gate,omitempty"`
}

// Input is one lineage edge: an artifact the producer read.
type Input struct {
	Name   string `json:"name"`
	Type   Type   `json:"type"`
	URI    string `json:"uri"`
	Digest string `json:"digest"`
}

// Property returns a property decoded into T (properties are JSON values, so
// numbers read back as float64 unless T says otherwise).
func Property[T any](sc *Sidecar, key string) (T, error) {
	var out T
	v, ok := sc.Properties[key]
	if !ok {
		return out, fmt.Errorf("artifact %s: %w: property %q", sc.URI, ErrNotFound, key)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return out, fmt.Errorf("artifact %s: property %q: %w", sc.URI, key, err)
	}
	if err := json.Unmarshal(data, &out); err != nil {
		return out, fmt.Errorf("artifact %s: %w: property %q: %v", sc.URI, ErrInvalid, key, err)
	}
	return out, nil
}

// ContentDigest computes the artifact digest over files (any order).
func ContentDigest(files []File) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	h := sha256.New()
	for _, f := range sorted {
		h.Write([]byte(f.Path))
		h.Write([]byte{0})
		h.Write([]byte(f.SHA256))
		h.Write([]byte{'\n'})
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// ParseSidecar decodes and checks an artifact.json: known fields only, a
// known type, safe file names, well-formed hashes and a digest that matches
// the file list.
func ParseSidecar(data []byte) (*Sidecar, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sc Sidecar
	if err := dec.Decode(&sc); err != nil {
		return nil, invalidf("sidecar: %v", err)
	}
	if dec.More() {
		return nil, invalidf("sidecar: trailing data after the JSON object")
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return &sc, nil
}

// Validate checks the sidecar's invariants without changing it.
func (sc *Sidecar) Validate() error {
	if sc.SchemaVersion != SchemaVersion {
		return invalidf("sidecar: schema_version %d, this build reads %d", sc.SchemaVersion, SchemaVersion)
	}
	if !sc.Type.Known() {
		return invalidf("sidecar: unknown type %q", sc.Type)
	}
	seen := make(map[string]bool, len(sc.Files))
	for _, f := range sc.Files {
		if err := CheckFileName(f.Path); err != nil {
			return fmt.Errorf("sidecar: %w", err)
		}
		if seen[f.Path] {
			return invalidf("sidecar: file %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if f.Size < 0 {
			return invalidf("sidecar: file %q: negative size", f.Path)
		}
		if !isHexDigest(f.SHA256) {
			return invalidf("sidecar: file %q: sha256 %q is not 64 lowercase hex digits", f.Path, f.SHA256)
		}
	}
	if want := ContentDigest(sc.Files); sc.Digest != want {
		return fmt.Errorf("%w: sidecar digest %s does not match its file list (%s)", ErrIntegrity, sc.Digest, want)
	}
	for _, in := range sc.Inputs {
		if in.URI == "" {
			return invalidf("sidecar: input %q has no uri", in.Name)
		}
	}
	return nil
}

func isHexDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckFileName accepts a payload file name: relative, slash-separated, no
// empty, "." or ".." element, no backslash or control character, not the
// sidecar itself, and nothing hidden at the top (".mlsteps" is ours).
func CheckFileName(name string) error {
	bad := func(why string) error { return invalidf("file name %q: %s", name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 1024:
		return bad("longer than 1024 bytes")
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.HasPrefix(name, "/"):
		return bad("absolute")
	case strings.ContainsRune(name, '\\'):
		return bad("contains a backslash")
	case name == SidecarName:
		return bad("reserved for the sidecar")
	case strings.HasPrefix(name, "."):
		return bad("starts with a dot")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return bad("contains a control character")
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return bad("has an empty, \".\" or \"..\" element")
		}
	}
	return nil
}
