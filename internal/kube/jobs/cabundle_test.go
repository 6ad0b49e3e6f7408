package jobs

import (
	"context"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

// TestEnsureCABundle_TrustCannotBeSwappedAfterTheCheck: the ConfigMap the
// agents read their CA bundle from is made immutable, so nobody with the
// right to update ConfigMaps in the namespace can swap in another CA
// between the check and the agent pod reading it (which would let them
// impersonate the platform to the agents: the job token, the data). One of
// that name made by someone else (its name follows from the public bundle)
// is refused unless it is immutable and holds that bundle.
func TestEnsureCABundle_TrustCannotBeSwappedAfterTheCheck(t *testing.T) {
	ctx := context.Background()
	bundle := testenv.NewCA(t).CertPEM

	cs := fake.NewClientset()
	name, err := EnsureCABundle(ctx, cs, "ns", bundle)
	if err != nil {
		t.Fatal(err)
	}
	cm, err := cs.CoreV1().ConfigMaps("ns").Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if cm.Immutable == nil || !*cm.Immutable || cm.Data[CAKey] != string(bundle) {
		t.Fatalf("ConfigMap %s: immutable %v, want an immutable one holding the bundle", name, cm.Immutable)
	}
	if again, err := EnsureCABundle(ctx, cs, "ns", bundle); err != nil || again != name {
		t.Fatalf("second apply: %q, %v; want the same ConfigMap reused", again, err)
	}

	// A tenant made it first, with the right content but editable.
	planted := CABundleConfigMap("ns", bundle)
	cs = fake.NewClientset(planted)
	if _, err := EnsureCABundle(ctx, cs, "ns", bundle); err == nil || !strings.Contains(err.Error(), planted.Name) || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("a mutable ConfigMap of that name: %v, want it refused, named, saying why", err)
	}

	// ... or with another CA in it.
	planted = CABundleConfigMap("ns", bundle)
	planted.Data[CAKey] = string(testenv.NewCA(t).CertPEM)
	planted.Immutable = ptr(true)
	cs = fake.NewClientset(planted)
	if _, err := EnsureCABundle(ctx, cs, "ns", bundle); err == nil || !strings.Contains(err.Error(), planted.Name) {
		t.Fatalf("a ConfigMap of that name with another CA: %v, want it refused", err)
	}
}
