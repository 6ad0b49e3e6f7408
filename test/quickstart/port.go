package quickstart

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// DefaultPort is where the platform listens unless QUICKSTART_PORT says
// otherwise or an earlier run of this checkout recorded another port.
const DefaultPort = 18080

// portTries bounds the search for a free port after the wanted one.
const portTries = 50

// portState is who holds a port.
type portState int

const (
	portFree    portState = iota // nothing listens: ours to take
	portOurs                     // a platform accepting this checkout's admin token
	portForeign                  // anything else: another checkout's platform, another program
)

// probePort says who holds host:port. A server accepting token on
// /api/v1/whoami is this checkout's own platform (the token is in its
// .quickstart/admin-token); one refusing it is another checkout's (it
// would answer /readyz just the same, which is how a second checkout used
// to adopt the first one's platform and then fail with 401). The token is
// the platform's admin token, so it is sent only to a port whose listener
// belongs to self (the uid of this process): on a shared machine another
// user's program on the port would otherwise receive it.
func probePort(ctx context.Context, host string, port int, token string, self int) (portState, string) {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if ln, err := net.Listen("tcp", addr); err == nil {
		_ = ln.Close()
		return portFree, ""
	}
	owners, err := listenerOwners(port)
	if err != nil {
		return portForeign, fmt.Sprintf("in use, and who listens cannot be told (%v), so it is not sent this checkout's admin token", err)
	}
	if len(owners) == 0 {
		return portForeign, "in use by a listener this process cannot see (another network namespace?)"
	}
	for _, uid := range owners {
		if uid != self {
			return portForeign, fmt.Sprintf("in use by a program of another user (uid %d), which is not sent this checkout's admin token", uid)
		}
	}
	if host == "0.0.0.0" || host == "" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, strconv.Itoa(port))+"/api/v1/whoami", nil)
	if err != nil {
		return portForeign, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return portForeign, fmt.Sprintf("in use by a program that does not answer HTTP (%v)", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return portOurs, ""
	case http.StatusUnauthorized, http.StatusForbidden:
		return portForeign, "a platform server that refuses this checkout's admin token (another checkout's quickstart?)"
	}
	return portForeign, fmt.Sprintf("in use by a server that answers %s", resp.Status)
}

// choosePort picks the port of this checkout's platform on host: want
// when it is free or already serves this checkout, else (unless fixed, the
// user's QUICKSTART_PORT) the next free one, saying so on out. It never
// picks a port held by a server that is not this checkout's.
func choosePort(ctx context.Context, host string, want int, fixed bool, token string, out io.Writer) (int, error) {
	var why string
	for p := want; p < want+portTries && p <= 65535; p++ {
		st, detail := probePort(ctx, host, p, token, os.Getuid())
		if st != portForeign {
			if p != want {
				fmt.Fprintf(out, "    port %d is taken: %s; using port %d instead (recorded in .quickstart/state.json, so later runs keep it; QUICKSTART_PORT=N picks one)\n", want, why, p)
			}
			return p, nil
		}
		if p == want {
			why = detail
		}
		if fixed {
			return 0, fmt.Errorf("port %d (QUICKSTART_PORT) on %s is taken: %s; stop what listens there (another checkout: `make quickstart-down` in it) or set QUICKSTART_PORT to a free port", p, host, detail)
		}
	}
	return 0, fmt.Errorf("ports %d-%d on %s are all taken (port %d: %s); set QUICKSTART_PORT to a free port", want, want+portTries-1, host, want, why)
}

// listenerOwners returns the uids owning the TCP sockets (IPv4 and IPv6)
// that listen on port in this network namespace, from /proc/net/tcp and
// /proc/net/tcp6 (the quickstart runs on Linux).
func listenerOwners(port int) ([]int, error) {
	var uids []int
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if os.IsNotExist(err) && f == "/proc/net/tcp6" {
			continue // a kernel without IPv6
		}
		if err != nil {
			return nil, err
		}
		u, err := parseListeners(fh, port)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		uids = append(uids, u...)
	}
	return uids, nil
}

// parseListeners reads a /proc/net/tcp table: the uids of the sockets in
// state LISTEN (0A) on port.
func parseListeners(r io.Reader, port int) ([]int, error) {
	var uids []int
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[3] != "0A" {
			continue
		}
		i := strings.LastIndexByte(f[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(f[1][i+1:], 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		uid, err := strconv.Atoi(f[7])
		if err != nil {
			return nil, fmt.Errorf("uid %q of a listener on port %d: %w", f[7], port, err)
		}
		uids = append(uids, uid)
	}
	return uids, sc.Err()
}
