package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/mlsteps/mlsteps/components/oip"
)

// RemoteStats are a RemoteHandler's counters, for tests and metrics.
type RemoteStats struct {
	// Attempts counts HTTP requests sent: inference, readiness and
	// metadata, first tries and retries.
	Attempts int64
	// Retries counts attempts that repeated a failed one.
	Retries int64
	// Failures counts attempts that failed in a retryable way: transport
	// errors, timeouts, 408, 429 and 5xx answers.
	Failures int64
	// Throttled counts 429 answers.
	Throttled int64
	// Rejected counts attempts refused, unsent, by the open breaker.
	Rejected int64
	// Breaker is the breaker's state now; BreakerOpens and BreakerCloses
	// count its transitions to open (a failed probe re-opens it) and
	// back to closed.
	Breaker                     BreakerState
	BreakerOpens, BreakerCloses int64
}

// BreakerState is a circuit breaker's state.
type BreakerState int

// Breaker states: closed lets requests through; open refuses them;
// half-open lets one probe through and refuses the rest.
const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "closed"
}

// remoteClient sends a handler's requests under its policies.
type remoteClient struct {
	modelURL string
	client   *http.Client
	own      bool // client is ours: Close may drop its idle connections
	header   http.Header
	timeout  time.Duration
	retry    RetryPolicy
	limiter  *rate.Limiter // nil: no rate limit
	slots    chan struct{} // nil: no concurrency bound
	breaker  *breaker      // nil: no breaker
	bufs     sync.Pool     // *bytes.Buffer for response bodies
	seq      atomic.Uint64 // request ids
	attempts atomic.Int64
	retries  atomic.Int64
	failures atomic.Int64
	throttle atomic.Int64
	rejected atomic.Int64
}

func newRemoteClient(h *RemoteHandler, modelURL string) *remoteClient {
	rc := &remoteClient{modelURL: modelURL, client: h.Client, header: h.Header.Clone(), timeout: h.Timeout, retry: h.Retry}
	if rc.header == nil {
		rc.header = http.Header{}
	}
	if rc.client == nil {
		// http.DefaultTransport keeps 2 idle connections per host: more
		// concurrent batches would dial a new connection each time.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = max(h.MaxConcurrency, 64)
		tr.MaxIdleConns = max(tr.MaxIdleConns, tr.MaxIdleConnsPerHost)
		rc.client, rc.own = &http.Client{Transport: tr}, true
	}
	if rc.timeout <= 0 {
		rc.timeout = 30 * time.Second
	}
	if rc.retry.MaxAttempts <= 0 {
		rc.retry.MaxAttempts = 4
	}
	if rc.retry.BaseBackoff <= 0 {
		rc.retry.BaseBackoff = 100 * time.Millisecond
	}
	if rc.retry.MaxBackoff <= 0 {
		rc.retry.MaxBackoff = 5 * time.Second
	}
	rc.retry.MaxBackoff = max(rc.retry.MaxBackoff, rc.retry.BaseBackoff)
	if h.RateLimit > 0 {
		rc.limiter = rate.NewLimiter(rate.Limit(h.RateLimit), max(h.Burst, 1))
	}
	if h.MaxConcurrency > 0 {
		rc.slots = make(chan struct{}, h.MaxConcurrency)
	}
	if h.Breaker.Failures >= 0 {
		b := &breaker{threshold: h.Breaker.Failures, cooldown: h.Breaker.Cooldown}
		if b.threshold == 0 {
			b.threshold = 5
		}
		if b.cooldown <= 0 {
			b.cooldown = 5 * time.Second
		}
		rc.breaker = b
	}
	return rc
}

func (rc *remoteClient) stats() RemoteStats {
	s := RemoteStats{
		Attempts:  rc.attempts.Load(),
		Retries:   rc.retries.Load(),
		Failures:  rc.failures.Load(),
		Throttled: rc.throttle.Load(),
		Rejected:  rc.rejected.Load(),
	}
	if b := rc.breaker; b != nil {
		b.mu.Lock()
		s.Breaker, s.BreakerOpens, s.BreakerCloses = b.state, b.opens, b.closes
		b.mu.Unlock()
	}
	return s
}

// nextID names a request; its retries keep the id, so a server can tell
// a retry from a new batch.
func (rc *remoteClient) nextID(model string) string {
	return model + "-" + strconv.FormatUint(rc.seq.Add(1), 10)
}

// call sends one request, retrying per the policy, and returns the body
// of its 2xx answer.
func (rc *remoteClient) call(ctx context.Context, method, url string, body []byte) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		out, after, retry, err := rc.attempt(ctx, method, url, body)
		if err == nil || !retry {
			return out, err
		}
		if attempt >= rc.retry.MaxAttempts {
			return nil, fmt.Errorf("%d attempts failed, the last: %w", attempt, err)
		}
		wait := after
		if wait < 0 {
			wait = rc.retry.backoff(attempt)
		}
		t := time.NewTimer(min(wait, rc.retry.MaxBackoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, context.Cause(ctx)
		}
		rc.retries.Add(1)
	}
}

// backoff draws the sleep before retry k (1, 2, ...): uniform between 0
// and min(MaxBackoff, BaseBackoff·2^(k-1)).
func (p RetryPolicy) backoff(k int) time.Duration {
	ceil := p.BaseBackoff
	for i := 1; i < k && ceil < p.MaxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, p.MaxBackoff)
	return time.Duration(rand.Int64N(int64(ceil) + 1))
}

// attempt sends the request once. It returns the body of a 2xx answer, or
// the error with whether a retry may succeed and, for an answer with
// Retry-After, how long to wait first (else -1).
func (rc *remoteClient) attempt(ctx context.Context, method, url string, body []byte) (out []byte, after time.Duration, retry bool, err error) {
	after = -1
	// The breaker comes first so that an open one refuses at once, not
	// after a wait for a slot or a token.
	probe, err := rc.breaker.allow()
	if err != nil {
		rc.rejected.Add(1)
		return nil, after, false, err
	}
	if rc.slots != nil {
		select {
		case rc.slots <- struct{}{}:
			defer func() { <-rc.slots }()
		case <-ctx.Done():
			rc.breaker.done(probe, outcomeNone, nil)
			return nil, after, false, context.Cause(ctx)
		}
	}
	if rc.limiter != nil {
		if err := rc.limiter.Wait(ctx); err != nil {
			rc.breaker.done(probe, outcomeNone, nil)
			if ctx.Err() != nil {
				return nil, after, false, context.Cause(ctx)
			}
			return nil, after, false, fmt.Errorf("rate limit: %w", err)
		}
	}
	rc.attempts.Add(1)
	actx, cancel := context.WithTimeout(ctx, rc.timeout)
	defer cancel()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, method, url, rd)
	if err != nil {
		rc.breaker.done(probe, outcomeNone, nil)
		return nil, after, false, err
	}
	req.Header = rc.header.Clone()
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := rc.client.Do(req)
	if err != nil {
		retry, err = rc.failed(ctx, actx, probe, err)
		return nil, after, retry, err
	}
	buf, _ := rc.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		buf.Reset()
		rc.bufs.Put(buf)
	}()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		retry, err = rc.failed(ctx, actx, probe, fmt.Errorf("read the answer: %w", err))
		return nil, after, retry, err
	}
	code := resp.StatusCode
	if code >= 200 && code < 300 {
		rc.breaker.done(probe, outcomeSuccess, nil)
		return bytes.Clone(buf.Bytes()), after, false, nil
	}
	rerr := &RemoteError{StatusCode: code, Message: errorText(buf.Bytes())}
	if code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500 {
		rc.failures.Add(1)
		if code == http.StatusTooManyRequests {
			rc.throttle.Add(1)
		}
		rc.breaker.done(probe, outcomeFailure, rerr)
		if d, ok := retryAfter(resp.Header.Get("Retry-After")); ok {
			after = d
		}
		return nil, after, true, rerr
	}
	// The server answered, so it is up: the request is what is wrong.
	rc.breaker.done(probe, outcomeSuccess, nil)
	return nil, after, false, rerr
}

// failed classifies a transport error: the caller's cancellation is no
// failure of the server's; anything else (a timeout, a refused or reset
// connection, an early EOF) is worth a retry.
func (rc *remoteClient) failed(ctx, actx context.Context, probe bool, err error) (bool, error) {
	if ctx.Err() != nil {
		rc.breaker.done(probe, outcomeNone, nil)
		return false, context.Cause(ctx)
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("attempt timed out after %s: %w", rc.timeout, err)
	}
	rc.failures.Add(1)
	rc.breaker.done(probe, outcomeFailure, err)
	return true, err
}

// errorText is the message of an error body: its "error" field, else
// the body itself, cut short.
func errorText(body []byte) string {
	var e oip.ErrorResponse
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 512 {
		s = s[:512] + "..."
	}
	return s
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

type outcome int

const (
	outcomeNone    outcome = iota // cancelled by the caller: no verdict
	outcomeSuccess                // the server answered
	outcomeFailure                // the server failed or was unreachable
)

// breaker is a consecutive-failures circuit breaker. A nil *breaker lets
// everything through.
type breaker struct {
	threshold int
	cooldown  time.Duration

	mu       sync.Mutex
	state    BreakerState
	fails    int       // failed attempts in a row
	last     error     // the latest failure
	openedAt time.Time // when it last opened
	probing  bool      // half-open: the probe is in flight
	opens    int64
	closes   int64
}

// allow says whether an attempt may go; probe is set for the half-open
// breaker's one probe, whose outcome decides its state.
func (b *breaker) allow() (probe bool, err error) {
	if b == nil {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerClosed:
		return false, nil
	case BreakerOpen:
		if wait := b.cooldown - time.Since(b.openedAt); wait > 0 {
			return false, fmt.Errorf("%w after %d failed requests in a row (last: %v); next probe in %s", ErrBreakerOpen, b.fails, b.last, wait.Round(time.Millisecond))
		}
		b.state = BreakerHalfOpen
	}
	if b.probing {
		return false, fmt.Errorf("%w after %d failed requests in a row (last: %v); a probe is in flight", ErrBreakerOpen, b.fails, b.last)
	}
	b.probing = true
	return true, nil
}

// done records an attempt's outcome. Only the probe's decides a half-open
// breaker; answers to attempts sent before the breaker opened are ignored
// while it is open.
func (b *breaker) done(probe bool, o outcome, err error) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		switch o {
		case outcomeSuccess:
			b.state, b.fails = BreakerClosed, 0
			b.closes++
		case outcomeFailure:
			b.fails++
			b.last = err
			b.state, b.openedAt = BreakerOpen, time.Now()
			b.opens++
		}
		return
	}
	if b.state != BreakerClosed {
		return
	}
	switch o {
	case outcomeSuccess:
		b.fails = 0
	case outcomeFailure:
		b.fails++
		b.last = err
		if b.fails >= b.threshold {
			b.state, b.openedAt = BreakerOpen, time.Now()
			b.opens++
		}
	}
}
