package artifacts

import (
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Schemes lists the blob URL schemes the store can open.
var schemes = []string{"file", "mem", "s3", "gs", "azblob"}

// URI locates an artifact (or any prefix) on blob storage. The zero value is
// not valid; build one with ParseURI.
type URI struct {
	// Scheme is one of file, mem, s3, gs, azblob.
	Scheme string
	// Bucket is the bucket, container or mem store name; empty for file.
	Bucket string
	// Path is the key prefix inside the bucket, slash-separated, without
	// leading or trailing slash. For file URIs it is the absolute path less
	// its leading slash.
	Path string
	// Query holds driver options (s3 endpoint, region, …), kept verbatim.
	Query string
}

// ParseURI parses a blob URL. A string without a scheme is a local path and
// becomes a file URI with an absolute path.
func ParseURI(raw string) (URI, error) {
	if raw == "" {
		return URI{}, invalidf("empty URI")
	}
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return URI{}, invalidf("local path %q: %v", raw, err)
		}
		return URI{Scheme: "file", Path: cleanKey(filepath.ToSlash(abs))}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return URI{}, invalidf("URI %q: %v", raw, err)
	}
	if !slices.Contains(schemes, u.Scheme) {
		return URI{}, invalidf("URI %q: unknown scheme %q (supported: %s)", raw, u.Scheme, strings.Join(schemes, ", "))
	}
	p := u.Path
	if strings.Contains(p, "..") && slices.Contains(strings.Split(p, "/"), "..") {
		return URI{}, invalidf("URI %q: path must not contain \"..\"", raw)
	}
	out := URI{Scheme: u.Scheme, Path: cleanKey(p), Query: u.RawQuery}
	if u.Scheme == "file" {
		if u.Host != "" && u.Host != "localhost" {
			return URI{}, invalidf("URI %q: file URIs take an absolute path (file:///dir), not a host", raw)
		}
		if out.Query != "" {
			return URI{}, invalidf("URI %q: file URIs take no query", raw)
		}
		return out, nil
	}
	if u.Host == "" {
		return URI{}, invalidf("URI %q: missing bucket name", raw)
	}
	out.Bucket = u.Host
	return out, nil
}

// MustParseURI is ParseURI for literals known to be valid; it panics otherwise.
func MustParseURI(raw string) URI {
	u, err := ParseURI(raw)
	if err != nil {
		panic(err)
	}
	return u
}

func cleanKey(p string) string {
	p = path.Clean("/" + p)
	return strings.Trim(p, "/")
}

// String renders the canonical URL.
func (u URI) String() string {
	var b strings.Builder
	b.WriteString(u.Scheme)
	b.WriteString("://")
	b.WriteString(u.Bucket)
	if u.Path != "" || u.Scheme == "file" {
		b.WriteByte('/')
		b.WriteString(u.Path)
	}
	if u.Query != "" {
		b.WriteByte('?')
		b.WriteString(u.Query)
	}
	return b.String()
}

// Join returns the URI of a key below u.
func (u URI) Join(elem ...string) URI {
	u.Path = cleanKey(path.Join(append([]string{u.Path}, elem...)...))
	return u
}

// Parent returns the URI one level up (itself at the bucket root).
func (u URI) Parent() URI {
	u.Path = cleanKey(path.Dir("/" + u.Path))
	return u
}

// Base returns the last element of the path.
func (u URI) Base() string { return path.Base("/" + u.Path) }

// key returns the blob key of a file below u.
func (u URI) key(name string) string {
	if u.Path == "" {
		return name
	}
	return u.Path + "/" + name
}

// prefix is the listing prefix of everything below u.
func (u URI) prefix() string {
	if u.Path == "" {
		return ""
	}
	return u.Path + "/"
}

// bucketKey identifies the bucket, so the store opens each once.
func (u URI) bucketKey() string { return u.Scheme + "://" + u.Bucket + "?" + u.Query }

// LocalPath returns the filesystem path of a file URI.
func (u URI) LocalPath() (string, bool) {
	if u.Scheme != "file" {
		return "", false
	}
	return filepath.FromSlash("/" + u.Path), true
}

// secretQueryKeys are query parameters that carry credentials in some drivers.
var secretQueryKeys = []string{"access_key", "accesskey", "secret", "secret_key", "secretkey", "token",
	"password", "sas", "sig", "signature", "session_token", "x-amz-signature", "x-amz-credential", "awssecretaccesskey"}

// Redact hides credentials in a URL (user info passwords and secret-looking
// query parameters) so it can go into records and logs.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return raw
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if u.RawQuery != "" {
		q := u.Query()
		changed := false
		for k := range q {
			if slices.Contains(secretQueryKeys, strings.ToLower(k)) {
				q.Set(k, "xxxxx")
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.String()
}

// pathMatch is path.Match on one element.
func pathMatch(pattern, name string) (bool, error) { return path.Match(pattern, name) }
