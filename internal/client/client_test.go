package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A tiny real HTTP server scripted per test: the client's retry behaviour is
// about status codes and timing, which the platform cannot be told to fake.
func scripted(t *testing.T, h func(n int64, w http.ResponseWriter, r *http.Request)) (*Client, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(calls.Add(1), w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Endpoint: srv.URL, Token: "t", RetryMax: 3, RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond,
		Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return c, &calls
}

func TestClient_Retries429HonouringRetryAfter(t *testing.T) {
	c, calls := scripted(t, func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = w.Write([]byte(`{"name":"x"}`))
	})
	// RetryWaitMax caps Retry-After; raise it so the header is honoured.
	c.http.RetryWaitMax = 2 * time.Second
	start := time.Now()
	p, err := c.GetProject(context.Background(), "x")
	if err != nil || p.Name != "x" || calls.Load() != 2 {
		t.Fatalf("got %+v, %v after %d calls", p, err, calls.Load())
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("retried after %v, want Retry-After's 1s", d)
	}
}

func TestClient_RetriesIdempotent5xxButNotPost(t *testing.T) {
	c, calls := scripted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":"boom"}`, http.StatusBadGateway)
	})
	if _, err := c.GetProject(context.Background(), "x"); !errors.Is(err, ErrServer) || calls.Load() != 4 {
		t.Fatalf("GET: %v after %d calls, want ErrServer after 4", err, calls.Load())
	}
	calls.Store(0)
	if _, err := c.CreateProject(context.Background(), "x", ""); !errors.Is(err, ErrServer) || calls.Load() != 1 {
		t.Fatalf("POST: %v after %d calls, want 1 call (not idempotent)", err, calls.Load())
	}
}

func TestClient_StopsAtOnceWhenContextDone(t *testing.T) {
	c, _ := scripted(t, func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	c.http.RetryWaitMax = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetProject(ctx, "x")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v", err, time.Since(start))
	}
}

func TestClient_TypedErrorsCarryMessageAndMissing(t *testing.T) {
	c, _ := scripted(t, func(_ int64, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/api/v1/projects/gone":
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"project \"gone\": not found"}`))
		case "/api/v1/projects/secret":
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"error":"forbidden: needs viewer"}`))
		default:
			w.WriteHeader(http.StatusConflict)
			_, _ = w.Write([]byte(`{"error":"2 chunks missing","missing":["sha256:a","sha256:b"]}`))
		}
	})
	ctx := context.Background()
	_, err := c.GetProject(ctx, "gone")
	var e *Error
	if !errors.Is(err, ErrNotFound) || !errors.As(err, &e) || e.Message != `project "gone": not found` {
		t.Fatalf("404: %v", err)
	}
	if _, err := c.GetProject(ctx, "secret"); !errors.Is(err, ErrForbidden) {
		t.Fatalf("403: %v", err)
	}
	_, err = c.CreateProject(ctx, "x", "")
	if !errors.Is(err, ErrConflict) || !errors.As(err, &e) || len(e.Missing) != 2 {
		t.Fatalf("409: %v", err)
	}
}

func TestClient_ConfigFromEnvironment(t *testing.T) {
	env := map[string]string{EnvEndpoint: "http://127.0.0.1:9/", EnvToken: "tok"}
	c, err := New(Config{Getenv: func(k string) string { return env[k] }})
	if err != nil || c.Endpoint() != "http://127.0.0.1:9" || c.token != "tok" {
		t.Fatalf("%v %+v", err, c)
	}
	if _, err := New(Config{Getenv: func(string) string { return "" }}); err == nil {
		t.Fatal("no endpoint: want an error")
	}
	if _, err := New(Config{Endpoint: "ftp://x", Getenv: func(string) string { return "" }}); err == nil {
		t.Fatal("ftp endpoint: want an error")
	}
}

func TestBackoff_JitteredAndCapped(t *testing.T) {
	for attempt := 0; attempt < 30; attempt++ {
		d := backoff(100*time.Millisecond, time.Second, attempt, nil)
		if d < 50*time.Millisecond || d > 1050*time.Millisecond {
			t.Fatalf("attempt %d: %v out of bounds", attempt, d)
		}
	}
	resp := &http.Response{Header: http.Header{"Retry-After": {"3"}}}
	if d := backoff(time.Millisecond, 10*time.Second, 0, resp); d != 3*time.Second {
		t.Fatalf("Retry-After 3: %v", d)
	}
}
