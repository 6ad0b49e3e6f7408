package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
	"github.com/unikubehq/terraform-provider-unikube/test/cluster"
)

// TestKubernetesRestore_OnlyTheListedObjectsAndNeverProtectedOnes restores
// hostile `kubernetes` packages into a real namespace holding a Helm
// release record and a service-account token Secret the cluster minted:
// every package that holds an object its manifest does not list, a release
// record or a token Secret, or that would overwrite one, is refused, and
// the namespace is left as it was; the honest package then restores.
func TestKubernetesRestore_OnlyTheListedObjectsAndNeverProtectedOnes(t *testing.T) {
	env := cluster.Require(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	secrets, cms := env.Client.CoreV1().Secrets(ns), env.Client.CoreV1().ConfigMaps(ns)

	if _, err := env.Client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "builder-token",
		Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}}, Type: corev1.SecretTypeServiceAccountToken}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The token controller fills the token in; wait so the snapshot below
	// is not raced by it.
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		s, err := secrets.Get(ctx, "builder-token", metav1.GetOptions{})
		return err == nil && len(s.Data["token"]) > 0, nil
	}); err != nil {
		t.Fatalf("the token controller did not fill builder-token: %v", err)
	}
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.shop.v1",
		Labels: map[string]string{"owner": "helm", "name": "shop", "status": "deployed", "version": "1"}},
		Type: "helm.sh/release.v1", Data: map[string][]byte{"release": []byte("H4sI-real")}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"MODE": "old"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	snapshot := func() map[string]string {
		out := map[string]string{}
		ss, err := secrets.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range ss.Items {
			out["Secret/"+s.Name] = s.ResourceVersion
		}
		cl, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cl.Items {
			out["ConfigMap/"+c.Name] = c.ResourceVersion
		}
		return out
	}
	before := snapshot()

	line := func(o kubernetes.Object) string {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	app := line(kubernetes.Object{Kind: kubernetes.KindConfigMap, Name: "app", Data: map[string][]byte{"MODE": []byte("new")}})
	restore := func(listed, stream string) error {
		c := statepkg.Component{Name: "config", Kind: statepkg.KindKubernetes, Format: kubernetes.Format, Size: int64(len(stream)),
			Meta: map[string]string{kubernetes.MetaObjects: listed}}
		_, err := kubernetes.New(env.Client, nil).Restore(ctx, c, driver.ReaderAtSource{R: strings.NewReader(stream), Size: int64(len(stream))},
			driver.Target{URL: kubernetes.URL(ns), Digest: "sha256:" + strings.Repeat("e", 64)}, nil)
		return err
	}
	for _, tt := range []struct {
		name, listed, stream, want string
	}{
		{"an extra object", "ConfigMap/app", app + line(kubernetes.Object{Kind: kubernetes.KindSecret, Name: "planted", Data: map[string][]byte{"x": []byte("y")}}),
			"object 2 (Secret/planted) is in the data but not in the manifest's list"},
		{"a helm release record", "ConfigMap/app,Secret/sh.helm.release.v1.shop.v1", app + line(kubernetes.Object{Kind: kubernetes.KindSecret,
			Name: "sh.helm.release.v1.shop.v1", Type: "helm.sh/release.v1", Labels: map[string]string{"owner": "helm"}, Data: map[string][]byte{"release": []byte("forged")}}),
			"Secret/sh.helm.release.v1.shop.v1, a Helm release record, which is never restored"},
		{"a token Secret", "ConfigMap/app,Secret/builder-token", app + line(kubernetes.Object{Kind: kubernetes.KindSecret, Name: "builder-token",
			Type: string(corev1.SecretTypeServiceAccountToken), Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}, Data: map[string][]byte{"token": []byte("forged")}}),
			"object 2 (Secret/builder-token) is a service-account token Secret, which is never restored"},
		{"an ordinary Secret over the token Secret", "ConfigMap/app,Secret/builder-token", app + line(kubernetes.Object{Kind: kubernetes.KindSecret, Name: "builder-token",
			Type: string(corev1.SecretTypeOpaque), Data: map[string][]byte{"token": []byte("forged")}}),
			"Secret/builder-token in " + ns + " is a service-account token Secret, which a state never overwrites"},
		{"another namespace", "ConfigMap/app", `{"kind":"ConfigMap","name":"app","namespace":"kube-system","data":{"MODE":"bmV3"}}` + "\n", `unknown field "namespace"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := restore(tt.listed, tt.stream)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("restore: %v; want a refusal saying %q", err, tt.want)
			}
			if after := snapshot(); !maps.Equal(before, after) {
				t.Errorf("namespace changed: before %v, after %v", before, after)
			}
		})
	}
	if _, err := secrets.Get(ctx, "planted", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("planted Secret: %v; want not found", err)
	}

	if err := restore("ConfigMap/app", app); err != nil {
		t.Fatalf("restore of the listed object: %v", err)
	}
	cm, err := cms.Get(ctx, "app", metav1.GetOptions{})
	if err != nil || cm.Data["MODE"] != "new" {
		t.Errorf("app after restore: %v, %v; want MODE=new", cm, err)
	}
	s, err := secrets.Get(ctx, "builder-token", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Type != corev1.SecretTypeServiceAccountToken || string(s.Data["token"]) == "forged" {
		t.Errorf("builder-token after the restores: type %s, token replaced: %v", s.Type, string(s.Data["token"]) == "forged")
	}
}
