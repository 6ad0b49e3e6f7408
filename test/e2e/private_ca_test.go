package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/discovery"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/executor"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/jobs"
	"github.com/unikubehq/terraform-provider-unikube/internal/kube/records"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
	"github.com/unikubehq/terraform-provider-unikube/test/clusterfixture"
)

// TestExecutor_PrivateCA serves the platform over HTTPS with a CA made in
// the test, on the node's address. A client without that CA fails at its
// first call, before anything in the namespace is touched; agents given the
// client's bundle (a ConfigMap the apply makes) verify the platform and
// restore the data, also in the database's own image; agents given another
// CA fail in the preflight, before anything is quiesced: replicas and data
// stay as they were; a ConfigMap the user names works the same way.
func TestExecutor_PrivateCA(t *testing.T) {
	env := cluster.Require(t)
	ca := testenv.NewCA(t)
	p := clusterfixture.StartPlatformTLS(t, env, exAdminToken, ca)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("diagnostics:\n%s", podDiagnostics(context.Background(), env, ns))
		}
	})
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("platform at %s, want https", p.URL)
	}
	v1, v2 := exSeed(ctx, t, p.Admin)
	app := exCreateApp(ctx, t, env, ns)
	opts := func(cl *client.Client, tag string) executor.Options {
		return executor.Options{
			Client: env.Client, Namespace: ns, Platform: cl, Ref: statepkg.Ref{Project: "shop", State: "seed", Tag: tag}, Release: "shop",
			Mappings: exMappings(), Quiesce: true, AgentImage: env.Image("unikube-agent"), Actor: "e2e",
		}
	}
	// untouched checks that an apply that failed left the app as it was:
	// replicas, no quiesce annotation, no successful record of it (a
	// refused apply leaves a failed one), the data of want.
	untouched := func(what string, want *exSums, records0 int) {
		t.Helper()
		for _, name := range []string{"web", "cache"} {
			d, err := env.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if *d.Spec.Replicas != 1 || d.Annotations["unikube.dev/quiesced-replicas"] != "" {
				t.Errorf("%s: deployment %s replicas %d annotations %v, want untouched", what, name, *d.Spec.Replicas, d.Annotations)
			}
		}
		sts, err := env.Client.AppsV1().StatefulSets(ns).Get(ctx, "db", metav1.GetOptions{})
		if err != nil || *sts.Spec.Replicas != 1 {
			t.Errorf("%s: statefulset db %v %v, want 1 replica", what, sts.Spec.Replicas, err)
		}
		rs, err := records.List(ctx, env.Client, ns, "shop")
		applied := 0
		for _, r := range rs {
			if r.Status != records.StatusFailed {
				applied++
			}
		}
		if err != nil || applied != records0 {
			t.Errorf("%s: %d successful records (%v), want %d", what, applied, err, records0)
		}
		if want != nil {
			if got := exClusterSums(ctx, t, env, app); got != *want {
				t.Errorf("%s: data %+v, want %+v", what, got, *want)
			}
		}
	}

	// 1. The caller's client does not know the CA: the first platform call
	// fails, naming the URL, the x509 reason and what to set.
	blind, err := client.New(client.Config{Endpoint: p.URL, Token: exAdminToken, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	_, err = executor.Apply(ctx, opts(blind, "v1"))
	if !errors.Is(err, client.ErrUntrustedCertificate) || !strings.Contains(err.Error(), p.URL) ||
		!strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), "ca_certificate") {
		t.Fatalf("apply without the CA: %v; want the untrusted-certificate error naming the URL and ca_certificate", err)
	}
	if cms, _ := env.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: jobs.LabelCABundle}); len(cms.Items) != 0 {
		t.Errorf("the failed apply made %d CA ConfigMaps", len(cms.Items))
	}
	untouched("apply without the CA", nil, 0)

	// 2. The client trusts the CA; the agents get the same bundle.
	start := time.Now()
	rec, err := executor.Apply(ctx, opts(p.Admin, "v1"))
	if err != nil {
		t.Fatalf("apply v1 over TLS: %v", err)
	}
	t.Logf("apply v1 over TLS with a private CA: %s", time.Since(start).Round(time.Millisecond))
	if got := exClusterSums(ctx, t, env, app); got != v1 || rec.Status != records.StatusApplied {
		t.Fatalf("after apply v1: %+v (%s), want %+v", got, rec.Status, v1)
	}
	cms, err := env.Client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{LabelSelector: jobs.LabelCABundle})
	if err != nil || len(cms.Items) != 1 || cms.Items[0].Data[jobs.CAKey] != string(ca.CertPEM) ||
		cms.Items[0].Labels[jobs.LabelManagedBy] != jobs.ManagedBy {
		t.Fatalf("CA ConfigMaps %+v %v, want one holding the CA, managed by unikube-state", cms, err)
	}

	// 3. The agents get another CA: their plan Jobs fail before anything
	// is quiesced; the app keeps v1 and its replicas.
	other := testenv.NewCA(t)
	o := opts(p.Admin, "v2")
	o.CABundle, o.DeleteFailedJobs = other.CertPEM, true
	_, err = executor.Apply(ctx, o)
	if err == nil || !strings.Contains(err.Error(), "nothing was changed") || !strings.Contains(err.Error(), "certificate signed by unknown authority") ||
		!strings.Contains(err.Error(), p.URL) {
		t.Fatalf("apply with agents given another CA: %v; want a preflight failure naming the x509 reason, nothing changed", err)
	}
	t.Logf("agents with the wrong CA: %v", err)
	untouched("agents with the wrong CA", &v1, 1)

	// 4. A ConfigMap the user names (e.g. kept by a trust manager).
	if _, err := env.Client.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "company-ca"},
		Data: map[string]string{"ca.crt": string(other.CertPEM) + string(ca.CertPEM)}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	o = opts(p.Admin, "v2")
	o.CAConfigMap = "no-such-ca"
	if _, err := executor.Apply(ctx, o); err == nil || !strings.Contains(err.Error(), "no-such-ca") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("apply naming a missing ConfigMap: %v", err)
	}
	o.CAConfigMap = "company-ca"
	if _, err := executor.Apply(ctx, o); err != nil {
		t.Fatalf("apply v2 with the CA from ConfigMap company-ca: %v", err)
	}
	if got := exClusterSums(ctx, t, env, app); got != v2 {
		t.Fatalf("after apply v2: %+v, want %+v", got, v2)
	}

	// 5. A capture quiesces before its agents run: agents that cannot
	// verify the platform fail after the quiesce, and the workloads are
	// scaled back; no version is made and the data stays.
	before, err := p.Admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = executor.Capture(ctx, executor.CaptureOptions{
		Client: env.Client, Namespace: ns, Platform: p.Admin, UploadToken: exAdminToken, Project: "shop", State: "seed",
		Mappings: []discovery.Mapping{
			{Component: "db", Kind: statepkg.KindPostgres, Workload: "StatefulSet/db", Quiesce: []string{"Deployment/web"}},
			{Component: "files", Kind: statepkg.KindVolume, Workload: "Deployment/web"},
		},
		Quiesce: true, AgentImage: env.Image("unikube-agent"), CABundle: other.CertPEM, DeleteFailedJobs: true,
	})
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("capture with agents given another CA: %v; want the x509 reason", err)
	}
	after, err := p.Admin.ListVersions(ctx, "shop", "seed", client.ListVersionsOptions{})
	if err != nil || len(after) != len(before) {
		t.Errorf("versions after the failed capture: %d (%v), want %d", len(after), err, len(before))
	}
	untouched("capture with agents given another CA", &v2, 2)
}
