package serve

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

// Client calls a policy server over HTTP.
type Client struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:8080.
	URL  string
	HTTP *http.Client
}

// NewClient returns a client of the server at url with a 30 s request timeout.
func NewClient(url string) *Client {
	return &Client{URL: strings.TrimRight(url, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}
}

// StatusError is a non-2xx reply of the server.
type StatusError struct {
	Code    int
	Message string
}

func (e *StatusError) Error() string { return fmt.Sprintf("server replied %d: %s", e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("serve client: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.URL+path, body)
	if err != nil {
		return fmt.Errorf("serve client: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("serve client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("serve client: %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e ErrorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(b))
		}
		return fmt.Errorf("serve client: %s %s: %w", method, path, &StatusError{Code: resp.StatusCode, Message: e.Error})
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("serve client: %s %s: decode reply: %w", method, path, err)
		}
	}
	return nil
}

// Act calls POST /act.
func (c *Client) Act(ctx context.Context, req ActRequest) (ActResponse, error) {
	var out ActResponse
	err := c.do(ctx, http.MethodPost, "/act", req, &out)
	return out, err
}

// Feedback calls POST /feedback.
func (c *Client) Feedback(ctx context.Context, req FeedbackRequest) (FeedbackResponse, error) {
	var out FeedbackResponse
	err := c.do(ctx, http.MethodPost, "/feedback", req, &out)
	return out, err
}

// Arms calls GET /arms.
func (c *Client) Arms(ctx context.Context) (ArmsResponse, error) {
	var out ArmsResponse
	err := c.do(ctx, http.MethodGet, "/arms", nil, &out)
	return out, err
}

// WaitReady polls GET /readyz until the server is ready or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		err := c.do(ctx, http.MethodGet, "/readyz", nil, nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("serve client: server not ready: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
