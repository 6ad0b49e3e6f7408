package quickstart

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProbePort_NeverSendsTheTokenToAnotherUsersServer: a port held by a
// program of another user (on a shared machine) is passed over without
// sending it this checkout's admin token, which would hand that user admin
// rights on this checkout's platform; a server of this user is asked as
// before.
func TestProbePort_NeverSendsTheTokenToAnotherUsersServer(t *testing.T) {
	const token = "uks_quickstart-never-leaves-this-user"
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	defer srv.Close()
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st, why := probePort(ctx, "127.0.0.1", port, token, os.Getuid()+1) // as if the server were another user's
	if st != portForeign || !strings.Contains(why, "another user") {
		t.Fatalf("another user's server: state %v (%q), want foreign naming another user", st, why)
	}
	mu.Lock()
	if len(seen) != 0 {
		t.Fatalf("another user's server received requests %q: the admin token must not leave this user", seen)
	}
	mu.Unlock()

	if st, why := probePort(ctx, "127.0.0.1", port, token, os.Getuid()); st != portOurs {
		t.Fatalf("this user's server accepting the token: state %v (%q), want ours", st, why)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0] != "Bearer "+token {
		t.Fatalf("this user's server saw %q", seen)
	}
}

func TestListenerOwners_ParsesProcNetTCP(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 3303100 1 0 100 0 0 10 0
   1: 0100007F:46A0 0100007F:C984 01 00000000:00000000 00:00000000 00000000  1002        0 3303101 1 0 100 0 0 10 0
   2: 00000000:46A1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3303102 1 0 100 0 0 10 0
`
	got, err := parseListeners(strings.NewReader(tcp), 0x46A0)
	if err != nil || len(got) != 1 || got[0] != 1001 {
		t.Fatalf("listeners on 18080: %v, %v; want [1001] (the established connection is no listener)", got, err)
	}
}
