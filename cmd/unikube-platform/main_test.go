package main_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

const adminToken = "uks_binary-test-admin-token-0123456789"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/unikube-platform once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		// Built once for all tests, so not in one test's t.TempDir().
		dir, err := os.MkdirTemp("", "unikube-platform-bin-") //nolint:usetesting // shared by every test of the run
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "unikube-platform")
		goBin, err := exec.LookPath("go")
		if err != nil {
			buildErr = fmt.Errorf("go toolchain not on PATH: %w", err)
			return
		}
		out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // its exit status, valid after exited
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// start runs the binary and waits until /healthz answers.
func start(t *testing.T, dir, addr string, env []string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	stdout := &syncBuffer{}
	cmd.Stdout = stdout
	if os.Getenv("UNIKUBE_TEST_SERVER_LOGS") != "" {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stdout: stdout, exited: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("server exited: %v\n%s", p.err, stdout.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("server did not become healthy")
	return nil
}

func newClient(t *testing.T, addr string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoint: "http://" + addr, Token: adminToken, RetryMax: 2,
		RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 50 * time.Millisecond, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, ^seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func makeVersion(t *testing.T, data []byte) (*statepkg.Manifest, *statepkg.MemoryStore) {
	t.Helper()
	mem := statepkg.NewMemoryStore()
	comp, _, err := statepkg.WriteComponent(context.Background(), mem, statepkg.Component{Name: "files", Kind: statepkg.KindVolume, Format: "tar"},
		bytes.NewReader(data), statepkg.WriteOptions{AvgSize: 1 << 20, MinSize: 256 << 10, MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return &statepkg.Manifest{SchemaVersion: 1, CreatedAt: time.Unix(1700000000, 0).UTC(), Components: []statepkg.Component{comp}}, mem
}

func verify(t *testing.T, c *client.Client, ref string, want []byte) {
	t.Helper()
	ctx := context.Background()
	m, _, err := c.GetManifest(ctx, "p", "s", ref)
	if err != nil {
		t.Fatalf("manifest %s: %v", ref, err)
	}
	var buf bytes.Buffer
	if err := statepkg.ReadComponent(ctx, c.Chunks("p", "s"), m.Components[0], &buf, statepkg.ReadOptions{}); err != nil {
		t.Fatalf("read %s: %v", ref, err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("%s: content differs", ref)
	}
}

// TestBinary_KillDuringUploadThenResume kills -9 the real server binary in
// the middle of a 100 MiB upload, restarts it, and resumes with the client:
// the committed version survives, the interrupted one was never visible, and
// the resumed push only sends what was not stored before the kill.
func TestBinary_KillDuringUploadThenResume(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	addr := freePort(t)
	env := []string{"UNIKUBE_ADMIN_TOKEN=" + adminToken, "UNIKUBE_LISTEN=" + addr, "UNIKUBE_DATA_DIR=" + filepath.Join(dir, "data")}
	p := start(t, dir, addr, env)
	c := newClient(t, addr)
	if _, err := c.CreateProject(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateState(ctx, "p", "s", ""); err != nil {
		t.Fatal(err)
	}
	small := randomBytes(3<<20, 1)
	ms, mems := makeVersion(t, small)
	if _, _, err := c.PushVersion(ctx, "p", "s", "committed", ms, mems, client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}

	big := randomBytes(100<<20, 2)
	mb, memb := makeVersion(t, big)
	total := len(mb.Components[0].Chunks)
	var sent atomic.Int64
	killed := make(chan struct{})
	var once sync.Once
	_, _, err := c.PushVersion(ctx, "p", "s", "big", mb, memb, client.TransferOptions{Parallelism: 4, Progress: func(_ statepkg.Chunk, transferred bool) {
		if transferred && sent.Add(1) == int64(total/3) {
			once.Do(func() {
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				<-p.exited
				close(killed)
			})
		}
	}})
	select {
	case <-killed:
	default:
		t.Fatalf("upload finished before the kill (err %v)", err)
	}
	if err == nil {
		t.Fatal("push succeeded although the server was killed")
	}
	t.Logf("killed after %d of %d chunks; push failed as expected: %v", sent.Load(), total, err)

	p2 := start(t, dir, addr, env)
	_ = p2
	if _, err := c.GetVersion(ctx, "p", "s", "big"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("interrupted version visible after restart: %v", err)
	}
	verify(t, c, "committed", small)
	tmp, _ := os.ReadDir(filepath.Join(dir, "data", "chunks", "tmp"))
	if len(tmp) != 0 {
		t.Fatalf("%d partial chunk files left after restart", len(tmp))
	}

	v, stats, err := c.PushVersion(ctx, "p", "s", "big", mb, memb, client.TransferOptions{Parallelism: 4})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if stats.Transferred >= total || stats.Transferred == 0 {
		t.Fatalf("resume sent %d of %d chunks; want only those missing", stats.Transferred, total)
	}
	t.Logf("resume sent %d of %d chunks", stats.Transferred, total)
	if v.Size != int64(len(big)) {
		t.Fatalf("version size %d", v.Size)
	}
	verify(t, c, "big", big)
	verify(t, c, "committed", small)
}

// TestBinary_DefaultsAndGracefulShutdown runs the binary with no flags: it
// listens on 127.0.0.1:8080, stores in ./unikube-data, prints the admin token
// on first start only, and exits 0 on SIGTERM.
func TestBinary_DefaultsAndGracefulShutdown(t *testing.T) {
	if l, err := net.Listen("tcp", "127.0.0.1:8080"); err != nil {
		t.Skipf("127.0.0.1:8080 is busy on this machine: %v", err)
	} else {
		l.Close()
	}
	dir := t.TempDir()
	p := start(t, dir, "127.0.0.1:8080", nil)
	out := p.stdout.String()
	var token string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if f := strings.TrimSpace(sc.Text()); strings.HasPrefix(f, "uks_") {
			token = f
		}
	}
	if token == "" {
		t.Fatalf("no admin token printed:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "unikube-data", "unikube.db")); err != nil {
		t.Fatalf("default data dir: %v", err)
	}
	c, _ := client.New(client.Config{Endpoint: "http://127.0.0.1:8080", Token: token, Getenv: func(string) string { return "" }})
	if w, err := c.Whoami(context.Background()); err != nil || !w.Admin {
		t.Fatalf("printed token: %v %+v", err, w)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(35 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	p2 := start(t, dir, "127.0.0.1:8080", nil)
	if strings.Contains(p2.stdout.String(), "uks_") {
		t.Fatal("admin token printed again on the second start")
	}
	if _, err := c.Whoami(context.Background()); err != nil {
		t.Fatalf("token after restart: %v", err)
	}
}

// TestBinary_GCSubcommand runs `unikube-platform gc` against the data of a
// running server (another process): unreferenced chunks go, live ones stay.
func TestBinary_GCSubcommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	addr := freePort(t)
	data := filepath.Join(dir, "data")
	env := []string{"UNIKUBE_ADMIN_TOKEN=" + adminToken, "UNIKUBE_LISTEN=" + addr, "UNIKUBE_DATA_DIR=" + data}
	start(t, dir, addr, env)
	c := newClient(t, addr)
	if _, err := c.CreateProject(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateState(ctx, "p", "s", ""); err != nil {
		t.Fatal(err)
	}
	keep := randomBytes(2<<20, 5)
	mk, memk := makeVersion(t, keep)
	md, memd := makeVersion(t, randomBytes(2<<20, 6))
	for tag, v := range map[string]struct {
		m   *statepkg.Manifest
		mem *statepkg.MemoryStore
	}{"keep": {mk, memk}, "drop": {md, memd}} {
		if _, _, err := c.PushVersion(ctx, "p", "s", tag, v.m, v.mem, client.TransferOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.DeleteVersion(ctx, "p", "s", "drop"); err != nil {
		t.Fatal(err)
	}
	gc := func(args ...string) string {
		cmd := exec.Command(binary(t), append([]string{"gc", "--data-dir", data}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gc %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := gc(); !strings.Contains(out, "deleted 0 chunks") {
		t.Fatalf("gc within the grace period deleted something:\n%s", out)
	}
	want := fmt.Sprintf("would delete %d chunks", len(md.Components[0].Chunks))
	if out := gc("--gc-grace", "0s", "--dry-run"); !strings.Contains(out, want) {
		t.Fatalf("dry run: want %q in\n%s", want, out)
	}
	want = fmt.Sprintf("deleted %d chunks", len(md.Components[0].Chunks))
	if out := gc("--gc-grace", "0s"); !strings.Contains(out, want) {
		t.Fatalf("gc: want %q in\n%s", want, out)
	}
	verify(t, c, "keep", keep)
}

// TestBinary_GCLeavesInFlightUploadsAlone runs `unikube-platform gc` (the
// default grace period) next to a live server, another process, in the
// middle of an upload: chunks uploaded but not yet committed survive even
// when their blobs are old (their bytes were stored long ago for a state
// since deleted, so the re-upload did not rewrite them), and so does a chunk
// write the server has not renamed into place yet (its temp file).
func TestBinary_GCLeavesInFlightUploadsAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	addr := freePort(t)
	data := filepath.Join(dir, "data")
	env := []string{"UNIKUBE_ADMIN_TOKEN=" + adminToken, "UNIKUBE_LISTEN=" + addr, "UNIKUBE_DATA_DIR=" + data}
	start(t, dir, addr, env)
	c := newClient(t, addr)
	if _, err := c.CreateProject(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"old", "s"} {
		if _, err := c.CreateState(ctx, "p", s, ""); err != nil {
			t.Fatal(err)
		}
	}
	content := randomBytes(2<<20, 7)
	m, mem := makeVersion(t, content)
	if _, _, err := c.PushVersion(ctx, "p", "old", "gone", m, mem, client.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteState(ctx, "p", "old"); err != nil {
		t.Fatal(err)
	}
	// Its chunks are garbage from long ago now.
	longAgo := time.Now().Add(-2 * time.Hour)
	for _, ch := range m.Components[0].Chunks {
		hex := strings.TrimPrefix(ch.Digest, "sha256:")
		if err := os.Chtimes(filepath.Join(data, "chunks", "sha256", hex[:2], hex), longAgo, longAgo); err != nil {
			t.Fatal(err)
		}
	}

	// In flight: the same bytes uploaded again (a capture reading its
	// chunks back before committing), and a write not renamed into place.
	for _, ch := range m.Components[0].Chunks {
		z, err := mem.Get(ctx, ch.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Chunks("p", "s").PutForReadBack(ctx, ch.Digest, z); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	writing := filepath.Join(data, "chunks", "tmp", "put-in-flight")
	if err := os.WriteFile(writing, []byte("half a chunk"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(binary(t), "gc", "--data-dir", data).CombinedOutput()
	if err != nil {
		t.Fatalf("gc: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "deleted 0 chunks") {
		t.Fatalf("gc deleted chunks of an upload in flight:\n%s", out)
	}
	if _, err := os.Stat(writing); err != nil {
		t.Fatalf("gc removed the server's chunk write in progress: %v", err)
	}
	for _, ch := range m.Components[0].Chunks {
		if _, err := c.Chunks("p", "s").Get(ctx, ch.Digest); err != nil {
			t.Fatalf("read back after gc: %v", err)
		}
	}
	_, stats, err := c.PushVersion(ctx, "p", "s", "v1", m, mem, client.TransferOptions{})
	if err != nil || stats.Transferred != 0 {
		t.Fatalf("commit after gc: %v, sent %d chunks again, want none", err, stats.Transferred)
	}
	verify(t, c, "v1", content)
}

// TestBinary_ServesTLS: with --tls-cert/--tls-key the server speaks HTTPS
// and the client talks to it with a custom trust pool.
func TestBinary_ServesTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(binary(t), "--listen", addr, "--data-dir", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	cmd.Env = append(os.Environ(), "UNIKUBE_ADMIN_TOKEN="+adminToken)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	c, err := client.New(client.Config{Endpoint: "https://" + addr, Token: adminToken, HTTPClient: hc, RetryMax: 10,
		RetryWaitMin: 50 * time.Millisecond, RetryWaitMax: 200 * time.Millisecond, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Whoami(context.Background())
	if err != nil || !w.Admin {
		t.Fatalf("whoami over TLS: %v %+v", err, w)
	}
	if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP accepted on the TLS listener")
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// TestBinary_SecretKeyFileSealsSensitiveDefaultsAndABadKeyStopsTheStart:
// the key comes from a file (never the command line); a key that is not 32
// bytes stops the server with a message saying how to make one.
func TestBinary_SecretKeyFileSealsSensitiveDefaultsAndABadKeyStopsTheStart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "secret-key")
	if err := os.WriteFile(keyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	start(t, dir, addr, []string{"UNIKUBE_ADMIN_TOKEN=" + adminToken, "UNIKUBE_LISTEN=" + addr, "UNIKUBE_DATA_DIR=" + filepath.Join(dir, "data"),
		"UNIKUBE_SECRET_KEY_FILE=" + keyFile})
	c := newClient(t, addr)
	if _, err := c.CreateProject(ctx, "p", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutScript(ctx, "p", "s", client.ScriptSpec{Interpreter: "sh", Body: "true",
		Variables: []client.Variable{{Name: "PW", Sensitive: true, Default: "binary-s3cret"}}}); err != nil {
		t.Fatalf("put a sensitive default with a key file: %v", err)
	}

	cmd := exec.Command(binary(t))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "UNIKUBE_ADMIN_TOKEN="+adminToken, "UNIKUBE_LISTEN="+freePort(t), "UNIKUBE_SECRET_KEY=c2hvcnQ=")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "UNIKUBE_SECRET_KEY") || !strings.Contains(string(out), "openssl rand -base64 32") || strings.Contains(string(out), "c2hvcnQ=") {
		t.Fatalf("bad key: %v\n%s", err, out)
	}
}
