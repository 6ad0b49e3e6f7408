package chart

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestChart_PlatformServesWithTheRenderedPodSettings runs the real server
// binary the way the rendered pod would: no arguments (the image's
// entrypoint), only the container's environment, the Secrets' keys as the
// mounted files and secretKeyRef values, and every mount path under a temp
// root. The server must come up ready on the chart's storage, take the
// admin token from its file (not generate one) and seal a sensitive script
// default with the chart's key.
func TestChart_PlatformServesWithTheRenderedPodSettings(t *testing.T) {
	bin := buildPlatform(t)
	t.Run("embedded", func(t *testing.T) {
		pod := startPod(t, bin, render(t))
		pod.checkServes(t)
	})
	t.Run("shared", func(t *testing.T) {
		pg := testenv.StartPostgres(t)
		pg.CreateDatabase(t, "platform")
		s3 := testenv.StartS3(t)
		s3.CreateBucket(t, "chunks")
		// The password and keys go through the chart's Secret, not the URL.
		dsn := (&url.URL{Scheme: "postgres", User: url.User(pg.User), Host: net.JoinHostPort(pg.Host, strconv.Itoa(pg.Port)), Path: "/platform", RawQuery: "sslmode=disable"}).String()
		r := render(t, "--set", "storage.mode=shared", "--set", "replicaCount=2",
			"--set-string", "storage.shared.database.url="+dsn,
			"--set-string", "storage.shared.database.password="+pg.Password,
			"--set-string", "storage.shared.blobStore.url=s3://chunks?endpoint="+s3.Endpoint+"&region="+s3.Region,
			"--set-string", "storage.shared.blobStore.accessKeyId="+s3.AccessKey,
			"--set-string", "storage.shared.blobStore.secretAccessKey="+s3.SecretKey)
		// Two pods on the same Secrets and stores, as two replicas.
		a, b := startPod(t, bin, r), startPod(t, bin, r)
		a.checkServes(t)
		if !strings.Contains(a.logs(), `"database":"postgres"`) || !strings.Contains(a.logs(), "s3://chunks") {
			t.Errorf("the server does not run on PostgreSQL and S3:\n%s", a.logs())
		}
		// The second replica sees what the first stored.
		if _, err := b.admin(t).GetScript(t.Context(), "shop", "seed"); err != nil {
			t.Errorf("the second replica does not see the first one's script: %v", err)
		}
	})
}

func buildPlatform(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "unikube-platform")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-o", bin, "../../cmd/unikube-platform")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build unikube-platform: %v\n%s", err, out)
	}
	return bin
}

// pod is the server running with one rendered pod's settings.
type pod struct {
	url, token string
	stdout     *syncBuffer
	stderr     *syncBuffer
}

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

func (p *pod) logs() string { return p.stdout.String() + p.stderr.String() }

func startPod(t *testing.T, bin string, r *rendered) *pod {
	t.Helper()
	root := t.TempDir()
	spec := r.deployment.Spec.Template.Spec
	c := r.container(t)
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	var mounts []string
	for _, m := range c.VolumeMounts {
		dir := filepath.Join(root, m.MountPath)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m.MountPath)
		v, ok := volumes[m.Name]
		if !ok {
			t.Fatalf("volumeMount %s names no volume", m.Name)
		}
		if v.Secret == nil {
			continue // a PVC or an emptyDir: an empty writable directory
		}
		sec, ok := r.secrets[v.Secret.SecretName]
		if !ok {
			t.Fatalf("volume %s mounts Secret %s, which the chart does not render", m.Name, v.Secret.SecretName)
		}
		for _, it := range v.Secret.Items {
			data, ok := sec.Data[it.Key]
			if !ok {
				t.Fatalf("volume %s mounts key %s, which Secret %s lacks", m.Name, it.Key, sec.Name)
			}
			if err := os.WriteFile(filepath.Join(dir, it.Path), data, 0o400); err != nil {
				t.Fatal(err)
			}
		}
	}
	remap := func(v string) string {
		for _, m := range mounts {
			if v == m || strings.HasPrefix(v, m+"/") {
				return filepath.Join(root, v)
			}
		}
		return v
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	// Only the container's environment, as in the pod.
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + root}
	for _, e := range c.Env {
		switch {
		case e.Name == "UNIKUBE_LISTEN":
			if e.Value != ":8080" {
				t.Fatalf("UNIKUBE_LISTEN = %q, want :8080 (the container port)", e.Value)
			}
			env = append(env, "UNIKUBE_LISTEN="+addr)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			data, ok := r.secrets[ref.Name].Data[ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				t.Fatalf("%s comes from Secret %s key %s, which the chart does not render", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+string(data))
		case e.ValueFrom != nil:
			t.Fatalf("%s: unexpected valueFrom %+v", e.Name, e.ValueFrom)
		default:
			env = append(env, e.Name+"="+remap(e.Value))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin) // no arguments: the image's entrypoint
	cmd.Env = env
	cmd.Dir = root
	p := &pod{url: "http://" + addr, stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		<-exited
	})
	p.token = string(r.secrets[r.deployment.Name].Data["admin-token"])

	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the server exited (%v):\n%s", err, p.logs())
		default:
		}
		if status(t, p.url+"/readyz", "") == http.StatusOK {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server is not ready on /readyz after a minute:\n%s", p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func status(t *testing.T, u, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (p *pod) admin(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Endpoint: p.url, Token: p.token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (p *pod) checkServes(t *testing.T) {
	t.Helper()
	if got := status(t, p.url+"/healthz", ""); got != http.StatusOK {
		t.Errorf("/healthz = %d, want 200", got)
	}
	if strings.Contains(p.logs(), "Admin token (shown only now") {
		t.Errorf("the server generated its own admin token instead of reading the mounted one:\n%s", p.logs())
	}
	if got := status(t, p.url+"/metrics", p.token); got != http.StatusOK {
		t.Errorf("/metrics with the chart's admin token = %d, want 200", got)
	}
	if got := status(t, p.url+"/metrics", "wrong-token-0123456789"); got != http.StatusUnauthorized {
		t.Errorf("/metrics with a wrong token = %d, want 401", got)
	}
	// A sensitive default is refused without a secret key: accepted here,
	// the chart's key reached the server.
	ctx := t.Context()
	admin := p.admin(t)
	if _, err := admin.CreateProject(ctx, "shop", ""); err != nil {
		t.Fatalf("create project with the chart's admin token: %v", err)
	}
	spec := client.ScriptSpec{Interpreter: "sh", Body: "echo hi", Variables: []client.Variable{{Name: "PASSWORD", Sensitive: true, Default: "s3cret-default"}}}
	if _, err := admin.PutScript(ctx, "shop", "seed", spec); err != nil {
		t.Errorf("a sensitive script default is refused; the chart's secret key did not reach the server: %v", err)
	}
}
