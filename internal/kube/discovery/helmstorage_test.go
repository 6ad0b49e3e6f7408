package discovery

import (
	"fmt"
	"testing"

	chart "helm.sh/helm/v4/pkg/chart/v2"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	release "helm.sh/helm/v4/pkg/release/v1"
	helmdriver "helm.sh/helm/v4/pkg/storage/driver"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// The release records are written by Helm 4's own Secrets driver, so this
// checks that LoadRelease reads what `helm install`/`helm upgrade` store.
func TestLoadRelease_ReadsTheNewestRevisionHelmStored(t *testing.T) {
	cs := fake.NewClientset(&appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-db", Namespace: "dev"},
		Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "db", Image: "postgres:16"}},
		}}},
	})
	store := helmdriver.NewSecrets(cs.CoreV1().Secrets("dev"))
	manifest := "---\n# Source: shop/templates/db.yaml\napiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: shop-db\n"
	for rev, status := range map[int]rcommon.Status{1: rcommon.StatusSuperseded, 2: rcommon.StatusDeployed} {
		rel := &release.Release{
			Name: "shop", Namespace: "dev", Version: rev, Manifest: manifest,
			Info:  &release.Info{Status: status},
			Chart: &chart.Chart{Metadata: &chart.Metadata{Name: "shop", Version: "1.0.0", APIVersion: chart.APIVersionV2}},
		}
		if err := store.Create(fmt.Sprintf("sh.helm.release.v1.shop.v%d", rev), rel); err != nil {
			t.Fatal(err)
		}
	}
	r, err := LoadRelease(t.Context(), cs, "dev", "shop")
	if err != nil {
		t.Fatal(err)
	}
	if r.Revision != 2 || r.Status != "deployed" || r.Chart != "shop-1.0.0" {
		t.Errorf("release = revision %d, status %q, chart %q; want revision 2, deployed, shop-1.0.0", r.Revision, r.Status, r.Chart)
	}
	if len(r.Workloads) != 1 || r.Workloads[0].Workload.Name != "shop-db" {
		t.Errorf("workloads = %+v, want the StatefulSet shop-db", r.Workloads)
	}
}
