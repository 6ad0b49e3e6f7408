package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/kubernetes/substitution"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// The fake clientset stands in for the API server in these unit tests of
// selection, encoding, substitution and rollback; test/e2e runs the
// driver against a real cluster.

func objects() []runtime.Object {
	return []runtime.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "staging", Labels: map[string]string{"app": "shop"},
			ResourceVersion: "7", UID: "u1", Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{}", "team": "a"}},
			Data: map[string]string{"DATABASE_HOST": "db.staging.svc"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "app-db", Namespace: "staging", Labels: map[string]string{"app": "shop"}},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"url": []byte("postgres://u:p@db.staging.svc/app")}},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt", Namespace: "staging"}, Data: map[string]string{"ca.crt": "x"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sh.helm.release.v1.shop.v1", Namespace: "staging", Labels: map[string]string{"owner": "helm"}},
			Type: "helm.sh/release.v1"},
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "staging", Labels: map[string]string{"app": "other"}}},
	}
}

func capture(t *testing.T, d *Driver, opts map[string]string) (statepkg.Component, []byte) {
	t.Helper()
	var buf bytes.Buffer
	res, err := d.Capture(context.Background(), driver.Source{URL: URL("staging"), Options: opts}, &buf, nil)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	return statepkg.Component{Name: "config", Kind: statepkg.KindKubernetes, Format: res.Format, Size: int64(buf.Len()), Meta: res.Meta}, buf.Bytes()
}

func TestCapture_SelectsObjectsAndDropsServerFields(t *testing.T) {
	cases := []struct {
		name string
		opts map[string]string
		want string
	}{
		{"everything but what others own", nil, "ConfigMap/app,ConfigMap/other,Secret/app-db"},
		{"label selector", map[string]string{"selector": "app=shop"}, "ConfigMap/app,Secret/app-db"},
		{"names", map[string]string{"names": "ConfigMap/app, app-db"}, "ConfigMap/app,Secret/app-db"},
		{"kinds", map[string]string{"kinds": "Secret", "selector": "app=shop"}, "Secret/app-db"},
		{"a skipped object when named", map[string]string{"names": "kube-root-ca.crt"}, "ConfigMap/kube-root-ca.crt"},
		{"excluded by name", map[string]string{"exclude": "ConfigMap/other"}, "ConfigMap/app,Secret/app-db"},
		{"excluded by bare name though named", map[string]string{"names": "ConfigMap/app,app-db", "exclude": "app-db"}, "ConfigMap/app"},
		{"excluded by label", map[string]string{"exclude_selectors": "app=other;tier=cache"}, "ConfigMap/app,Secret/app-db"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, raw := capture(t, New(fake.NewClientset(objects()...), nil), tc.opts)
			if c.Meta[MetaObjects] != tc.want {
				t.Errorf("objects %q, want %q", c.Meta[MetaObjects], tc.want)
			}
			if bytes.Contains(raw, []byte("resourceVersion")) || bytes.Contains(raw, []byte("last-applied")) {
				t.Errorf("server-owned fields captured: %s", raw)
			}
		})
	}
	if _, err := New(fake.NewClientset(objects()...), nil).Capture(context.Background(),
		driver.Source{URL: URL("staging"), Options: map[string]string{"names": "ConfigMap/missing"}}, &bytes.Buffer{}, nil); err == nil ||
		!strings.Contains(err.Error(), "ConfigMap/missing not found") {
		t.Errorf("capture of a missing name: %v", err)
	}
}

func TestCapture_RejectsABadExcludeSelector(t *testing.T) {
	_, err := New(fake.NewClientset(objects()...), nil).Capture(context.Background(),
		driver.Source{URL: URL("staging"), Options: map[string]string{"exclude_selectors": "app in (x"}}, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), `exclude selector "app in (x"`) {
		t.Errorf("capture with a malformed exclude selector: %v", err)
	}
}

func TestRestore_ClonesWithSubstitutionThenPlansSkip(t *testing.T) {
	ctx := context.Background()
	c, raw := capture(t, New(fake.NewClientset(objects()...), nil), map[string]string{"selector": "app=shop"})
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "dev"}, Data: map[string]string{"old": "1"}})
	d := New(cs, []substitution.Rule{{Old: "db.staging.svc", New: "db.dev.svc"}})
	tgt := driver.Target{URL: URL("dev"), State: "shop/seed", Digest: "sha256:abc"}
	plan, err := d.Plan(ctx, c, tgt)
	if err != nil || plan.Action != driver.ActionReplace {
		t.Fatalf("plan %+v %v, want replace", plan, err)
	}
	res, err := d.Restore(ctx, c, driver.ReaderAtSource{R: bytes.NewReader(raw), Size: int64(len(raw))}, tgt, nil)
	if err != nil || res.Rows != 2 {
		t.Fatalf("restore %+v %v", res, err)
	}
	cm, _ := cs.CoreV1().ConfigMaps("dev").Get(ctx, "app", metav1.GetOptions{})
	if cm.Data["DATABASE_HOST"] != "db.dev.svc" || cm.Data["old"] != "" || cm.Annotations[AnnotationDigest] != "sha256:abc" || cm.Annotations["team"] != "a" {
		t.Errorf("configmap %+v %v", cm.Data, cm.Annotations)
	}
	s, _ := cs.CoreV1().Secrets("dev").Get(ctx, "app-db", metav1.GetOptions{})
	if string(s.Data["url"]) != "postgres://u:p@db.dev.svc/app" {
		t.Errorf("secret url %q", s.Data["url"])
	}
	plan, err = d.Plan(ctx, c, tgt)
	if err != nil || plan.Action != driver.ActionSkip {
		t.Errorf("plan after restore %+v %v, want skip", plan, err)
	}
	forced := tgt
	forced.Force = true
	if plan, err = d.Plan(ctx, c, forced); err != nil || plan.Action != driver.ActionReplace {
		t.Errorf("forced plan after restore %+v %v, want replace", plan, err)
	}
}

func TestRestore_FailureMidwayPutsBackWhatWasWritten(t *testing.T) {
	ctx := context.Background()
	c, raw := capture(t, New(fake.NewClientset(objects()...), nil), map[string]string{"selector": "app=shop"})
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "dev"}, Data: map[string]string{"old": "1"}})
	cs.PrependReactor("create", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(corev1.Resource("secrets"), "app-db", errors.New("denied"))
	})
	_, err := New(cs, nil).Restore(ctx, c, driver.ReaderAtSource{R: bytes.NewReader(raw), Size: int64(len(raw))},
		driver.Target{URL: URL("dev"), Digest: "sha256:abc"}, nil)
	if err == nil || !strings.Contains(err.Error(), "put back") {
		t.Fatalf("restore with a forbidden secret: %v", err)
	}
	cm, _ := cs.CoreV1().ConfigMaps("dev").Get(ctx, "app", metav1.GetOptions{})
	if cm.Data["old"] != "1" || cm.Data["DATABASE_HOST"] != "" {
		t.Errorf("configmap not put back: %v", cm.Data)
	}
}

func TestRestore_FailedReplaceOfAnImmutableObjectPutsItBack(t *testing.T) {
	ctx := context.Background()
	c, raw := capture(t, New(fake.NewClientset(objects()...), nil), map[string]string{"selector": "app=shop"})
	immutable := true
	cs := fake.NewClientset(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "dev"}, Data: map[string]string{"old": "1"}, Immutable: &immutable})
	// The replace deletes the immutable ConfigMap, then its create fails;
	// later creates (the put back) go through.
	failed := false
	cs.PrependReactor("create", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failed {
			return false, nil, nil
		}
		failed = true
		return true, nil, apierrors.NewForbidden(corev1.Resource("configmaps"), "app", errors.New("denied"))
	})
	_, err := New(cs, nil).Restore(ctx, c, driver.ReaderAtSource{R: bytes.NewReader(raw), Size: int64(len(raw))},
		driver.Target{URL: URL("dev"), Digest: "sha256:abc"}, nil)
	if err == nil || !strings.Contains(err.Error(), "denied") {
		t.Fatalf("restore with a forbidden configmap create: %v", err)
	}
	cm, err := cs.CoreV1().ConfigMaps("dev").Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("configmap not put back: %v", err)
	}
	if cm.Data["old"] != "1" || cm.Immutable == nil || !*cm.Immutable {
		t.Errorf("configmap put back as %v (immutable %v), want the old immutable one", cm.Data, cm.Immutable)
	}
}

func TestRestore_BadStreamOrRuleChangesNothing(t *testing.T) {
	ctx := context.Background()
	c, raw := capture(t, New(fake.NewClientset(objects()...), nil), nil)
	for name, tc := range map[string]struct {
		raw   []byte
		rules []substitution.Rule
	}{
		"truncated": {raw[:len(raw)-10], nil},
		"bad rule":  {raw, []substitution.Rule{{Old: ""}}},
	} {
		t.Run(name, func(t *testing.T) {
			cs := fake.NewClientset()
			c := c
			c.Size = int64(len(tc.raw))
			_, err := New(cs, tc.rules).Restore(ctx, c, driver.ReaderAtSource{R: bytes.NewReader(tc.raw), Size: int64(len(tc.raw))},
				driver.Target{URL: URL("dev")}, nil)
			if err == nil || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("restore: %v", err)
			}
			if len(cs.Actions()) != 0 {
				t.Errorf("API calls made: %v", cs.Actions())
			}
		})
	}
}

// A package restores exactly the objects its manifest lists, and never a
// Helm release record, a service-account token Secret, unikube-state's own
// objects, another kind or another namespace: each hostile package is
// refused before anything is written, naming the object and the reason.
func TestRestore_RefusesObjectsTheManifestDoesNotListOrThatAreProtected(t *testing.T) {
	ctx := context.Background()
	line := func(o Object) string {
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return string(b) + "\n"
	}
	app := line(Object{Kind: KindConfigMap, Name: "app", Data: map[string][]byte{"k": []byte("v")}})
	tests := []struct {
		name    string
		listed  string // the manifest's list
		stream  string
		want    string
		refused bool // wraps ErrObjectsRefused
	}{
		{"an object the manifest does not list", "ConfigMap/app", app + line(Object{Kind: KindSecret, Name: "extra", Data: map[string][]byte{"x": []byte("y")}}),
			"object 2 (Secret/extra) is in the data but not in the manifest's list ConfigMap/app", true},
		{"an object listed but missing", "ConfigMap/app,Secret/db", app, "the manifest lists Secret/db but the data does not hold it", true},
		{"an object twice", "ConfigMap/app", app + app, "object 2 (ConfigMap/app) appears twice", true},
		{"no list", "", app, "the manifest lists no objects", true},
		{"another kind listed", "ConfigMap/app,Pod/x", app, `the manifest lists "Pod/x"`, true},
		{"another kind in the data", "ConfigMap/app", app + `{"kind":"Pod","name":"x"}` + "\n", `kind "Pod": want ConfigMap or Secret`, false},
		{"another namespace", "ConfigMap/app", `{"kind":"ConfigMap","name":"app","namespace":"kube-system"}` + "\n", `unknown field "namespace"`, false},
		{"a helm release record", "Secret/sh.helm.release.v1.shop.v1",
			line(Object{Kind: KindSecret, Name: "sh.helm.release.v1.shop.v1", Type: "helm.sh/release.v1", Labels: map[string]string{"owner": "helm"}}),
			"the manifest lists Secret/sh.helm.release.v1.shop.v1, a Helm release record, which is never restored", true},
		{"a helm release record by type", "Secret/innocent",
			line(Object{Kind: KindSecret, Name: "innocent", Type: "helm.sh/release.v1"}),
			"object 1 (Secret/innocent) is a Helm release record, which is never restored", true},
		{"a helm release record by label (configmap storage)", "ConfigMap/innocent",
			line(Object{Kind: KindConfigMap, Name: "innocent", Labels: map[string]string{"owner": "helm", "name": "shop"}}),
			"object 1 (ConfigMap/innocent) is a Helm release record", true},
		{"a service-account token", "Secret/default-token",
			line(Object{Kind: KindSecret, Name: "default-token", Type: string(corev1.SecretTypeServiceAccountToken),
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}, Data: map[string][]byte{"token": []byte("t")}}),
			"object 1 (Secret/default-token) is a service-account token Secret, which is never restored", true},
		{"an apply record of unikube-state", "ConfigMap/rec",
			line(Object{Kind: KindConfigMap, Name: "rec", Labels: map[string]string{"owner": "unikube-state"}}),
			"object 1 (ConfigMap/rec) is an object of unikube-state itself", true},
		{"over a token Secret of the target", "Secret/builder-token",
			line(Object{Kind: KindSecret, Name: "builder-token", Type: string(corev1.SecretTypeOpaque), Data: map[string][]byte{"token": []byte("mine")}}),
			"Secret/builder-token in dev is a service-account token Secret, which a state never overwrites", true},
		{"over a helm release record of the target", "ConfigMap/shop.v3",
			line(Object{Kind: KindConfigMap, Name: "shop.v3", Data: map[string][]byte{"release": []byte("forged")}}),
			"ConfigMap/shop.v3 in dev is a Helm release record, which a state never overwrites", true},
	}
	existing := func() []runtime.Object {
		return []runtime.Object{
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "dev"}, Data: map[string]string{"old": "1"}},
			&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "builder-token", Namespace: "dev",
				Annotations: map[string]string{corev1.ServiceAccountNameKey: "builder"}},
				Type: corev1.SecretTypeServiceAccountToken, Data: map[string][]byte{"token": []byte("cluster-minted")}},
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "shop.v3", Namespace: "dev", Labels: map[string]string{"owner": "helm", "name": "shop"}},
				Data: map[string]string{"release": "real"}},
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs := fake.NewClientset(existing()...)
			c := statepkg.Component{Name: "config", Kind: statepkg.KindKubernetes, Format: Format, Size: int64(len(tt.stream)),
				Meta: map[string]string{MetaObjects: tt.listed}}
			if tt.listed == "" {
				c.Meta = nil
			}
			_, err := New(cs, nil).Restore(ctx, c, driver.ReaderAtSource{R: strings.NewReader(tt.stream), Size: int64(len(tt.stream))},
				driver.Target{URL: URL("dev"), Digest: "sha256:abc"}, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("restore: %v; want a refusal saying %q", err, tt.want)
			}
			if tt.refused != errors.Is(err, ErrObjectsRefused) {
				t.Errorf("errors.Is(err, ErrObjectsRefused) = %v, want %v", !tt.refused, tt.refused)
			}
			for _, a := range cs.Actions() {
				if a.GetVerb() != "get" {
					t.Errorf("API call %s %s made", a.GetVerb(), a.GetResource().Resource)
				}
			}
			for _, o := range existing() {
				var got runtime.Object
				switch o := o.(type) {
				case *corev1.ConfigMap:
					got, err = cs.CoreV1().ConfigMaps("dev").Get(ctx, o.Name, metav1.GetOptions{})
				case *corev1.Secret:
					got, err = cs.CoreV1().Secrets("dev").Get(ctx, o.Name, metav1.GetOptions{})
				}
				if err != nil || !reflect.DeepEqual(got, o) {
					t.Errorf("target object changed: %+v (%v), want %+v", got, err, o)
				}
			}
		})
	}
}

// A capture that names a protected object fails rather than writing a
// state no restore takes; left unnamed, such objects are skipped.
func TestCapture_RefusesANamedProtectedObject(t *testing.T) {
	_, err := New(fake.NewClientset(objects()...), nil).Capture(context.Background(),
		driver.Source{URL: URL("staging"), Options: map[string]string{"names": "sh.helm.release.v1.shop.v1"}}, &bytes.Buffer{}, nil)
	if err == nil || !strings.Contains(err.Error(), "Secret/sh.helm.release.v1.shop.v1 in staging is a Helm release record, which is never captured or restored") {
		t.Errorf("capture of a named Helm release record: %v", err)
	}
}
