package artifacts

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
)

// Entry is one blob found by Walk.
type Entry struct {
	URI     URI
	Size    int64
	ModTime time.Time
	// MD5 is the blob's MD5 when the driver reports one (S3, GCS), else nil.
	MD5 []byte
}

// Version is a short text that changes whenever the blob is rewritten:
// its MD5 when known, else size and modification time. Indexes keep it to
// read only what changed since their last pass.
func (e Entry) Version() string {
	if len(e.MD5) > 0 {
		return "md5:" + hex.EncodeToString(e.MD5)
	}
	return strconv.FormatInt(e.Size, 10) + "@" + e.ModTime.UTC().Format(time.RFC3339Nano)
}

// IsSidecar reports whether the entry is an artifact's artifact.json.
func (e Entry) IsSidecar() bool { return path.Base(e.URI.Path) == SidecarName }

// IsExecutionRecord reports whether the entry is an execution record
// (<root>/.mlsteps/executions/<id>.json).
func (e Entry) IsExecutionRecord() bool {
	dir, file := path.Split(e.URI.Path)
	return strings.HasSuffix(strings.TrimSuffix(dir, "/"), ExecutionsDir) && strings.HasSuffix(file, ".json")
}

// Walk calls fn for every blob below root, in key order as the driver lists
// them. It is how lineage finds every sidecar and execution record of a
// pipeline root without a metadata server. An error from fn stops the walk
// and is returned as is.
func (s *Store) Walk(ctx context.Context, root URI, fn func(Entry) error) error {
	b, err := s.Bucket(ctx, root)
	if err != nil {
		return err
	}
	opts := &blob.ListOptions{Prefix: root.prefix()}
	token := blob.FirstPageToken
	for {
		// Large pages: fileblob walks the whole tree for every page, so
		// its default 1,000 makes listing a big store quadratic. Object
		// stores still fetch their own page size per request.
		objs, next, err := b.ListPage(ctx, token, walkPageSize, opts)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("list %s: %w", Redact(root.String()), err)
		}
		for _, obj := range objs {
			if obj.IsDir {
				continue
			}
			u := root
			u.Path = obj.Key
			if err := fn(Entry{URI: u, Size: obj.Size, ModTime: obj.ModTime, MD5: obj.MD5}); err != nil {
				return err
			}
		}
		if len(next) == 0 {
			return nil
		}
		token = next
	}
}

const walkPageSize = 50_000

// Link is an upstream artifact as a report shows it, so a reader can go
// from a report to what it was made from.
type Link struct {
	// Text is for people: "examples: Dataset 3f2a9c1b0d4e".
	Text   string `json:"text"`
	URI    string `json:"uri"`
	Digest string `json:"digest"`
	// Href is a browser link to the artifact's sidecar for file URIs;
	// empty for object stores, which browsers cannot open.
	Href string `json:"href,omitempty"`
}

// UpstreamLinks turns lineage inputs (a sidecar's Inputs, or those a step
// builds with InputOf) into report links, in order. Steps that write HTML
// reports (validate, evaluate) call it; it lives here because steps may
// not import orchestrate.
func UpstreamLinks(inputs []Input) []Link {
	links := make([]Link, 0, len(inputs))
	for _, in := range inputs {
		d := strings.TrimPrefix(in.Digest, "sha256:")
		if len(d) > 12 {
			d = d[:12]
		}
		l := Link{Text: in.Name + ": " + string(in.Type) + " " + d, URI: in.URI, Digest: in.Digest}
		if strings.HasPrefix(in.URI, "file:///") {
			l.Href = in.URI + "/" + SidecarName
		}
		links = append(links, l)
	}
	return links
}

// InputOf is the lineage input an opened artifact stands for, as the
// harness records it.
func InputOf(name string, a *Artifact) Input {
	return Input{Name: name, Type: a.Type, URI: Redact(a.Location().String()), Digest: a.Digest}
}
