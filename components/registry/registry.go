package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Error kinds, checked with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrInvalid  = errors.New("invalid")
)

// Object names below a model's prefix.
const (
	PointerName = "current"
	claimsDir   = "claims"
	versionsDir = "versions"
	recordsDir  = "records"
)

// Reasons a pointer moved.
const (
	ReasonPush     = "push"
	ReasonRollback = "rollback"
)

// maxClaimAttempts bounds the numbers one Claim tries; only that many
// concurrent winners in a row could exhaust it.
const maxClaimAttempts = 1000

// Options configure a Registry; the zero value is usable.
type Options struct {
	// LocalDir is the directory the bucket is a fileblob bucket of, set
	// only for such buckets: claims are then files created with O_EXCL,
	// since fileblob's IfNotExist is checked within one process only.
	LocalDir string
	// Now stamps claims, records and pointer moves; nil: time.Now.
	Now func() time.Time
	// ClaimSettle is how long Claim waits before reading its claim back,
	// for stores whose write-if-absent is not atomic (some S3-compatible
	// servers check, then write): when two writers both "create" a claim,
	// the read-back shows one of them the other's. 0: 50ms; negative: no
	// read-back, for stores known atomic (memblob, GCS, Azure). Claims
	// with LocalDir are O_EXCL files and never read back.
	ClaimSettle time.Duration
}

// Registry is a versioned registry under one prefix of a bucket. It is
// safe for concurrent use, and several processes may use one registry.
type Registry struct {
	b    *blob.Bucket
	root string
	opts Options
}

// New returns the registry under prefix root of b ("" is the bucket's
// root). It reads and writes nothing yet.
func New(b *blob.Bucket, root string, opts Options) *Registry {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Registry{b: b, root: strings.Trim(root, "/"), opts: opts}
}

// Claim is who took a version number, and when.
type Claim struct {
	Version int `json:"version"`
	// Token is unique to the claimer; Publish checks that the claim
	// still holds it.
	Token   string    `json:"token"`
	Claimed time.Time `json:"claimed"`
	By      string    `json:"by"`
	Host    string    `json:"host,omitempty"`
	PID     int       `json:"pid,omitempty"`
}

// Blessing is the verdict a version was pushed under.
type Blessing struct {
	URI     string `json:"uri,omitempty"`
	Digest  string `json:"digest,omitempty"`
	Blessed bool   `json:"blessed"`
	// Skipped means the push went ahead without a verdict, on request.
	Skipped bool `json:"skipped,omitempty"`
}

// Version is the record of one complete version.
type Version struct {
	Name    string `json:"name"`
	Version int    `json:"version"`
	// URI is the version's folder relative to the model's prefix
	// ("versions/3"); Publish fills it in.
	URI string `json:"uri"`
	// Digest is the model's content digest; ModelID its id in results.
	Digest  string `json:"digest"`
	ModelID string `json:"model_id,omitempty"`
	// Claim is the token of the claim the version was pushed under.
	Claim string `json:"claim,omitempty"`
	// Source is where the pushed model came from.
	Source   string    `json:"source,omitempty"`
	Blessing *Blessing `json:"blessing,omitempty"`
	Pushed   time.Time `json:"pushed"`
	// PushedBy names the pusher (an execution id).
	PushedBy string `json:"pushed_by,omitempty"`
	// Validation holds what the pusher checked before pushing.
	Validation map[string]any `json:"validation,omitempty"`
}

// Pointer is the content of a model's current object. Its shape is what
// model pointer readers expect: {"uri": ..., "version": n, "digest": ...},
// the URI relative to the pointer's folder.
type Pointer struct {
	URI      string    `json:"uri"`
	Version  int       `json:"version"`
	Digest   string    `json:"digest"`
	Switched time.Time `json:"switched"`
	Reason   string    `json:"reason"`
	Previous int       `json:"previous,omitempty"`
}

// Entry is one version as List reports it.
type Entry struct {
	Version int
	Claim   *Claim   // nil for a version recorded without a claim (not made by Claim)
	Record  *Version // nil: claimed, but the push never completed
	Current bool
}

// Complete reports whether the version was published.
func (e Entry) Complete() bool { return e.Record != nil }

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$`)

// CheckName checks a model name: 1 to 63 lowercase letters, digits, dots,
// dashes and underscores, starting and ending with a letter or digit, so
// it is a safe key element and close to a Kubernetes name.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: model name %q: want 1-63 lowercase letters, digits, '.', '-' or '_', starting and ending with a letter or digit", ErrInvalid, name)
	}
	return nil
}

func (r *Registry) key(name string, elem ...string) string {
	return path.Join(append([]string{r.root, name}, elem...)...)
}

// VersionKey is the key prefix (no trailing slash) holding version n's files.
func (r *Registry) VersionKey(name string, n int) string {
	return r.key(name, versionsDir, strconv.Itoa(n))
}

// PointerKey is the key of the model's pointer object.
func (r *Registry) PointerKey(name string) string { return r.key(name, PointerName) }

// Claim takes the next free version number of name for by. Numbers
// already claimed, even by pushes that never completed, are not reused.
// Pass the claim's Token to Publish in Version.Claim.
func (r *Registry) Claim(ctx context.Context, name, by string) (Claim, error) {
	if err := CheckName(name); err != nil {
		return Claim{}, err
	}
	claims, err := r.numbers(ctx, r.key(name, claimsDir)+"/")
	if err != nil {
		return Claim{}, err
	}
	n := 1
	if len(claims) > 0 {
		n = claims[len(claims)-1] + 1
	}
	host, _ := os.Hostname()
	for range maxClaimAttempts {
		var tok [16]byte
		_, _ = rand.Read(tok[:])
		c := Claim{Version: n, Token: hex.EncodeToString(tok[:]), Claimed: r.opts.Now().UTC(), By: by, Host: host, PID: os.Getpid()}
		data, _ := json.Marshal(c)
		key := r.key(name, claimsDir, strconv.Itoa(n))
		won, err := r.createOnce(ctx, key, data)
		if err != nil {
			return Claim{}, fmt.Errorf("claim %s version %d: %w", name, n, err)
		}
		if won && r.opts.LocalDir == "" && r.opts.ClaimSettle >= 0 {
			settle := r.opts.ClaimSettle
			if settle == 0 {
				settle = 50 * time.Millisecond
			}
			select {
			case <-time.After(settle):
			case <-ctx.Done():
				return Claim{}, ctx.Err()
			}
			if won, err = r.holds(ctx, name, n, c.Token); err != nil {
				return Claim{}, err
			}
		}
		if won {
			return c, nil
		}
		n++
	}
	return Claim{}, fmt.Errorf("claim %s: %d numbers in a row were taken by others", name, maxClaimAttempts)
}

// holds reports whether claim n of name holds token.
func (r *Registry) holds(ctx context.Context, name string, n int, token string) (bool, error) {
	data, err := r.b.ReadAll(ctx, r.key(name, claimsDir, strconv.Itoa(n)))
	if err != nil {
		return false, fmt.Errorf("read back %s claim %d: %w", name, n, err)
	}
	var c Claim
	if err := json.Unmarshal(data, &c); err != nil {
		return false, fmt.Errorf("%w: %s claim %d: %v", ErrInvalid, name, n, err)
	}
	return c.Token == token, nil
}

// createOnce writes key only if it does not exist; it reports whether
// this call created it.
func (r *Registry) createOnce(ctx context.Context, key string, data []byte) (bool, error) {
	if r.opts.LocalDir != "" {
		p := filepath.Join(r.opts.LocalDir, filepath.FromSlash(key))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		_, err = f.Write(data)
		if err = errors.Join(err, f.Close()); err != nil {
			// A claim file that is there is a claim, written or not.
			return true, err
		}
		return true, nil
	}
	err := r.b.WriteAll(ctx, key, data, &blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return false, nil
	}
	return err == nil, err
}

// numbers lists the numeric names directly below prefix, ascending.
func (r *Registry) numbers(ctx context.Context, prefix string) ([]int, error) {
	var out []int
	it := r.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/"), ".json")
		if n, err := strconv.Atoi(base); err == nil && n > 0 && strconv.Itoa(n) == base {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Publish records a version whose files are whole under VersionKey and
// moves the pointer to it, unless the pointer already names a higher
// version (a later push won the race; the record is kept, the pointer
// stays). It returns the pointer as it now is.
func (r *Registry) Publish(ctx context.Context, v Version) (Pointer, error) {
	if err := CheckName(v.Name); err != nil {
		return Pointer{}, err
	}
	if v.Version < 1 || v.Digest == "" {
		return Pointer{}, fmt.Errorf("%w: publish %s: version %d, digest %q", ErrInvalid, v.Name, v.Version, v.Digest)
	}
	if v.Claim != "" {
		// A claim taken twice on a store without atomic conditional
		// writes shows here at the latest, before anything points at it.
		ok, err := r.holds(ctx, v.Name, v.Version, v.Claim)
		if err != nil {
			return Pointer{}, err
		}
		if !ok {
			return Pointer{}, fmt.Errorf("%w: publish %s version %d: the claim is not this push's (the store's write-if-absent is not atomic); push again", ErrInvalid, v.Name, v.Version)
		}
	}
	v.URI = path.Join(versionsDir, strconv.Itoa(v.Version))
	if v.Pushed.IsZero() {
		v.Pushed = r.opts.Now().UTC()
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return Pointer{}, fmt.Errorf("publish %s version %d: %w", v.Name, v.Version, err)
	}
	err = r.b.WriteAll(ctx, r.key(v.Name, recordsDir, strconv.Itoa(v.Version)+".json"), append(data, '\n'),
		&blob.WriterOptions{ContentType: "application/json", IfNotExist: true})
	if gcerrors.Code(err) == gcerrors.FailedPrecondition {
		return Pointer{}, fmt.Errorf("%w: publish %s version %d: already recorded", ErrInvalid, v.Name, v.Version)
	}
	if err != nil {
		return Pointer{}, fmt.Errorf("publish %s version %d: %w", v.Name, v.Version, err)
	}
	cur, err := r.Current(ctx, v.Name)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return Pointer{}, err
	case cur.Version > v.Version:
		return cur, nil
	}
	return r.point(ctx, v, ReasonPush, cur.Version)
}

// point writes the pointer: one object replaced whole.
func (r *Registry) point(ctx context.Context, v Version, reason string, previous int) (Pointer, error) {
	p := Pointer{URI: path.Join(versionsDir, strconv.Itoa(v.Version)), Version: v.Version, Digest: v.Digest,
		Switched: r.opts.Now().UTC(), Reason: reason, Previous: previous}
	data, _ := json.MarshalIndent(p, "", "  ")
	if err := r.b.WriteAll(ctx, r.PointerKey(v.Name), append(data, '\n'), &blob.WriterOptions{ContentType: "application/json"}); err != nil {
		return Pointer{}, fmt.Errorf("switch %s to version %d: %w", v.Name, v.Version, err)
	}
	return p, nil
}

// Current reads the model's pointer.
func (r *Registry) Current(ctx context.Context, name string) (Pointer, error) {
	var p Pointer
	if err := CheckName(name); err != nil {
		return p, err
	}
	data, err := r.b.ReadAll(ctx, r.PointerKey(name))
	if gcerrors.Code(err) == gcerrors.NotFound {
		return p, fmt.Errorf("%s: %w: no current version (nothing pushed yet)", name, ErrNotFound)
	}
	if err != nil {
		return p, fmt.Errorf("read %s pointer: %w", name, err)
	}
	if err := json.Unmarshal(data, &p); err != nil || p.Version < 1 || p.URI == "" {
		return p, fmt.Errorf("%w: %s pointer %s: %.100q", ErrInvalid, name, r.PointerKey(name), data)
	}
	return p, nil
}

// Get reads version n's record.
func (r *Registry) Get(ctx context.Context, name string, n int) (Version, error) {
	var v Version
	if err := CheckName(name); err != nil {
		return v, err
	}
	key := r.key(name, recordsDir, strconv.Itoa(n)+".json")
	data, err := r.b.ReadAll(ctx, key)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return v, fmt.Errorf("%s version %d: %w (no record: never pushed, or the push did not complete)", name, n, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("read %s: %w", key, err)
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("%w: %s: %v", ErrInvalid, key, err)
	}
	return v, nil
}

// List returns every version of name, claimed or recorded, ascending.
func (r *Registry) List(ctx context.Context, name string) ([]Entry, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	claimed, err := r.numbers(ctx, r.key(name, claimsDir)+"/")
	if err != nil {
		return nil, err
	}
	recorded, err := r.numbers(ctx, r.key(name, recordsDir)+"/")
	if err != nil {
		return nil, err
	}
	cur, err := r.Current(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	all := slices.Compact(slices.Sorted(slices.Values(append(claimed, recorded...))))
	if len(all) == 0 {
		return nil, fmt.Errorf("%s: %w: no versions under %s", name, ErrNotFound, r.key(name))
	}
	out := make([]Entry, 0, len(all))
	for _, n := range all {
		e := Entry{Version: n, Current: cur.Version == n}
		if slices.Contains(claimed, n) {
			data, err := r.b.ReadAll(ctx, r.key(name, claimsDir, strconv.Itoa(n)))
			if err != nil {
				return nil, fmt.Errorf("read %s claim %d: %w", name, n, err)
			}
			var c Claim
			if json.Unmarshal(data, &c) == nil {
				e.Claim = &c
			}
		}
		if slices.Contains(recorded, n) {
			v, err := r.Get(ctx, name, n)
			if err != nil {
				return nil, err
			}
			e.Record = &v
		}
		out = append(out, e)
	}
	return out, nil
}

// Names lists the models in the registry.
func (r *Registry) Names(ctx context.Context) ([]string, error) {
	prefix := r.root + "/"
	if r.root == "" {
		prefix = ""
	}
	var out []string
	it := r.b.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(obj.Key, prefix), "/")
		if obj.IsDir && CheckName(name) == nil {
			out = append(out, name)
		}
	}
}

// Rollback moves the pointer to version to, or with to 0 to the highest
// complete version below the current one. The version must be complete.
func (r *Registry) Rollback(ctx context.Context, name string, to int) (Pointer, error) {
	cur, err := r.Current(ctx, name)
	if err != nil {
		return Pointer{}, err
	}
	if to == 0 {
		entries, err := r.List(ctx, name)
		if err != nil {
			return Pointer{}, err
		}
		for _, e := range slices.Backward(entries) {
			if e.Version < cur.Version && e.Complete() {
				to = e.Version
				break
			}
		}
		if to == 0 {
			return Pointer{}, fmt.Errorf("%s: %w: no complete version below the current %d to roll back to", name, ErrNotFound, cur.Version)
		}
	}
	v, err := r.Get(ctx, name, to)
	if err != nil {
		return Pointer{}, fmt.Errorf("roll back: %w", err)
	}
	return r.point(ctx, v, ReasonRollback, cur.Version)
}
