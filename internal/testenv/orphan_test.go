package testenv_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

const helperEnv = "TESTENV_ORPHAN_HELPER"

// TestKilledTestBinary_LeavesNoServers runs a child test binary that starts
// every server, SIGKILLs it (no cleanup runs), and checks that every server
// process died with it.
func TestKilledTestBinary_LeavesNoServers(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestOrphanHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var addrs, dirs []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if f, ok := strings.CutPrefix(line, "SERVER "); ok {
			addr, dir, _ := strings.Cut(f, " ")
			addrs, dirs = append(addrs, addr), append(dirs, dir)
		}
		if line == "READY" {
			break
		}
	}
	if len(addrs) == 0 {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper started no servers")
	}
	t.Cleanup(func() {
		for _, d := range dirs {
			os.RemoveAll(d) // the killed helper could not clean up
		}
	})
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	deadline := time.Now().Add(15 * time.Second)
	for {
		var alive []string
		for _, a := range addrs {
			if c, err := net.DialTimeout("tcp", a, 200*time.Millisecond); err == nil {
				c.Close()
				alive = append(alive, "listener "+a)
			}
		}
		alive = append(alive, processesIn(dirs)...)
		if len(alive) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the test binary was killed these survived: %s", strings.Join(alive, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesIn lists processes whose working directory is inside one of dirs
// (every server runs in its own directory, postgres backends in DataDir).
func processesIn(dirs []string) []string {
	var found []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cwd")
	for _, p := range procs {
		cwd, err := os.Readlink(p)
		if err != nil {
			continue
		}
		for _, d := range dirs {
			if cwd == d || strings.HasPrefix(cwd, d+"/") {
				found = append(found, fmt.Sprintf("pid %s in %s", filepath.Base(filepath.Dir(p)), cwd))
			}
		}
	}
	return found
}

// TestOrphanHelper is the child of TestKilledTestBinary_LeavesNoServers.
func TestOrphanHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestKilledTestBinary_LeavesNoServers")
	}
	ctx := t.Context()
	report := func(host string, port int, dir string) {
		fmt.Printf("SERVER %s %s\n", net.JoinHostPort(host, strconv.Itoa(port)), dir)
	}
	pg, _, err := testenv.RunPostgres(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	report(pg.Host, pg.Port, filepath.Dir(pg.DataDir))
	m, _, err := testenv.RunMariaDB(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	report(m.Host, m.Port, filepath.Dir(m.DataDir))
	r, _, err := testenv.RunRedis(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	report(r.Host, r.Port, r.Dir)
	s, _, err := testenv.RunS3(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("SERVER %s %s\n", s.Addr(), filepath.Dir(s.Dir))
	fmt.Println("READY")
	time.Sleep(time.Minute) // killed by the parent long before
}
