package submit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// HTTPError is a server's non-2xx answer.
type HTTPError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), strings.TrimSpace(e.Body))
}

// client is the shared HTTP part of both servers' clients.
type client struct {
	server string
	token  string
	http   *http.Client
}

func newClient(server, token string, hc *http.Client) client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return client{server: strings.TrimRight(server, "/"), token: token, http: hc}
}

// do sends body (already JSON, or nil) and decodes a JSON answer into out.
func (c client) do(ctx context.Context, method, path string, body []byte, out func([]byte) error) error {
	url := c.server + path
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+strings.TrimPrefix(c.token, "Bearer "))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Method: method, URL: url, Status: resp.StatusCode, Body: string(data)}
	}
	if out == nil {
		return nil
	}
	if err := out(data); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, url, err)
	}
	return nil
}

func jsonOut(v any) func([]byte) error {
	return func(data []byte) error { return json.Unmarshal(data, v) }
}

// poll calls check every interval until it reports done or ctx ends.
func poll(ctx context.Context, interval time.Duration, check func() (bool, error)) error {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
