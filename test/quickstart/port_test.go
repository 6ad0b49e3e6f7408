package quickstart

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/platform/server"
)

// startPlatform serves a real platform with adminToken on a free loopback
// port and returns the port.
func startPlatform(t *testing.T, adminToken string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Options{DataDir: t.TempDir(), AdminToken: adminToken,
		SecretKey: "dGVzdC1vbmx5LXNlY3JldC1rZXktMzItYnl0ZXMhISE=", Getenv: func(string) string { return "" }})
	if err != nil {
		cancel()
		t.Fatalf("platform: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	p, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPlatformPort_PassesOverAnotherCheckoutsPlatform: a second checkout
// finds a real platform of another checkout on its port (it answers
// /readyz but refuses this checkout's admin token). It does not adopt it:
// it picks the next free port, says so, and records it so its next run
// keeps it; a run whose own platform serves the recorded port keeps that
// port; with QUICKSTART_PORT fixed to the taken port it stops and says
// what to do.
func TestPlatformPort_PassesOverAnotherCheckoutsPlatform(t *testing.T) {
	const first, second = "uks_quickstart-first-checkout", "uks_quickstart-second-checkout"
	taken := startPlatform(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ready(ctx, "http://127.0.0.1:"+strconv.Itoa(taken)); err != nil {
		t.Fatalf("the first checkout's platform: %v", err)
	}

	dir := filepath.Join(t.TempDir(), ".quickstart")
	if err := privateDir(dir); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	r := newRun(Config{Root: t.TempDir(), Dir: dir, Out: &out})
	r.token, r.st.Port = second, taken // as if the default port were the taken one
	if err := r.platformPort(ctx, "127.0.0.1"); err != nil {
		t.Fatal(err)
	}
	if r.st.Port == taken || r.st.Port == 0 {
		t.Fatalf("chose port %d: the other checkout's platform holds %d", r.st.Port, taken)
	}
	for _, want := range []string{"port " + strconv.Itoa(taken) + " is taken", "refuses this checkout's admin token", "using port " + strconv.Itoa(r.st.Port)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
	if err := r.save(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(r.statePath())
	if err != nil || !strings.Contains(string(b), `"port": `+strconv.Itoa(r.st.Port)) {
		t.Fatalf("state file %s (%v) does not record the port", b, err)
	}

	// The first checkout itself keeps its port: its server accepts its token.
	out.Reset()
	own := newRun(Config{Root: t.TempDir(), Dir: dir, Out: &out})
	own.token, own.st.Port = first, taken
	if err := own.platformPort(ctx, "127.0.0.1"); err != nil || own.st.Port != taken || out.Len() != 0 {
		t.Fatalf("own platform: port %d, %v, %q; want %d, silently", own.st.Port, err, out.String(), taken)
	}

	// QUICKSTART_PORT names the taken port: stop and say what to do.
	fixed := newRun(Config{Root: t.TempDir(), Dir: dir, Out: &out, Port: taken})
	fixed.token = second
	err = fixed.platformPort(ctx, "127.0.0.1")
	if err == nil || !strings.Contains(err.Error(), "QUICKSTART_PORT") || !strings.Contains(err.Error(), "refuses this checkout's admin token") {
		t.Fatalf("fixed port: %v, want an error naming QUICKSTART_PORT and why", err)
	}
}
