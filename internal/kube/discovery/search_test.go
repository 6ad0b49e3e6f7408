package discovery

import (
	"context"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// TestReleaseWorkload_SearchNodesKnownByImageAndPort: OpenSearch and
// Elasticsearch StatefulSets are search components by their image (unless
// they declare ports without 9200), or by declaring 9200 and 9300 under
// any image name; dashboards and exporters named after them are apps.
func TestReleaseWorkload_SearchNodesKnownByImageAndPort(t *testing.T) {
	for _, c := range []struct {
		image string
		ports []int32
		want  statepkg.Kind
	}{
		{"opensearchproject/opensearch:2.19.1", []int32{9200, 9300, 9600}, statepkg.KindOpenSearch},
		{"docker.elastic.co/elasticsearch/elasticsearch:8.15.0", nil, statepkg.KindOpenSearch},
		{"bitnami/elasticsearch:7.17.10", []int32{9200}, statepkg.KindOpenSearch},
		{"registry.local:5000/opensearch:2.19@sha256:abcd", []int32{9200, 9300}, statepkg.KindOpenSearch},
		{"acme/search-node:4", []int32{9200, 9300}, statepkg.KindOpenSearch},
		{"opensearchproject/opensearch-dashboards:2.19.1", []int32{5601}, ""},
		{"docker.elastic.co/kibana/kibana:8.15.0", []int32{5601}, ""},
		{"prometheuscommunity/elasticsearch-exporter:v1.7.0", []int32{9114}, ""},
		{"opensearchproject/opensearch:2.19.1", []int32{8080}, ""},
		{"acme/app:1", []int32{9200}, ""},
	} {
		w := ReleaseWorkload{Workload: quiesce.Workload{Kind: quiesce.StatefulSet, Name: "x"}, Images: []string{c.image}, Ports: c.ports}
		if got := w.Kind(); got != c.want {
			t.Errorf("%s ports %v: kind %q, want %q", c.image, c.ports, got, c.want)
		}
	}
}

func searchStatefulSet(name, image string, env ...corev1.EnvVar) *appsv1.StatefulSet {
	labels := map[string]string{"app.kubernetes.io/instance": "shop", "app.kubernetes.io/name": name}
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: appsv1.StatefulSetSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "node", Image: image, Env: env,
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9200}, {Name: "transport", ContainerPort: 9300}}}}}}}}
}

func searchService(name string, headless bool, ports ...int32) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app.kubernetes.io/name": "shop-search"}}}
	if headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	for _, p := range ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: p})
	}
	return s
}

// TestRelease_SearchComponentMapsToTheNodeAndItsService: a release with a
// database and a search node maps an opensearch component to the node's
// StatefulSet; the target is the REST port of the Service in front of it
// (not the transport-only headless one), reached by the agent image alone
// (no exec into the node, no volume), with the images' administrator and
// password variable when security is on.
func TestRelease_SearchComponentMapsToTheNodeAndItsService(t *testing.T) {
	rel := &Release{Name: "shop", Workloads: []ReleaseWorkload{
		stsWorkload(searchStatefulSet("shop-db", "localhost/postgres:15")),
		stsWorkload(searchStatefulSet("shop-search", "localhost/opensearch:2.19")),
		{Workload: quiesce.Workload{Kind: quiesce.Deployment, Name: "shop-dashboards"}, Images: []string{"opensearchproject/opensearch-dashboards:2"}, Ports: []int32{5601}},
	}}
	rel.Workloads[0].Ports = []int32{5432}
	ms, err := rel.Map([]Component{{Name: "db", Kind: statepkg.KindPostgres}, {Name: "search", Kind: statepkg.KindOpenSearch}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ms[1].Workload != "StatefulSet/shop-search" {
		t.Fatalf("search maps to %q, want StatefulSet/shop-search", ms[1].Workload)
	}
	if got := rel.Components(); len(got) != 2 || got[1].Component != "search" || got[1].Kind != statepkg.KindOpenSearch {
		t.Errorf("components proposed: %+v, want db and search (opensearch)", got)
	}

	secret := &corev1.EnvVar{Name: "OPENSEARCH_INITIAL_ADMIN_PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "search-admin"}, Key: "password"}}}
	for _, c := range []struct {
		name    string
		env     []corev1.EnvVar
		wantURL string
		wantRef bool
	}{
		{"security off", nil, "http://shop-search.ns.svc.cluster.local:9200", false},
		{"opensearch security plugin", []corev1.EnvVar{*secret}, "https://admin@shop-search.ns.svc.cluster.local:9200", true},
		{"security plugin disabled", []corev1.EnvVar{*secret, {Name: "DISABLE_SECURITY_PLUGIN", Value: "true"}}, "http://admin@shop-search.ns.svc.cluster.local:9200", true},
		{"elasticsearch with http TLS", []corev1.EnvVar{{Name: "ELASTIC_PASSWORD", Value: "pw"}, {Name: "xpack.security.http.ssl.enabled", Value: "true"}}, "https://elastic@shop-search.ns.svc.cluster.local:9200", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := fake.NewClientset(searchStatefulSet("shop-search", "localhost/opensearch:2.19", c.env...),
				searchService("shop-search-headless", true, 9300), searchService("shop-search", false, 9200))
			ts, err := Resolve(context.Background(), cs, "ns", ms[1:])
			if err != nil {
				t.Fatal(err)
			}
			got := ts[0]
			if got.URL != c.wantURL || got.Image != "" || got.PVC != "" {
				t.Errorf("target URL %q image %q pvc %q, want %q on the agent image alone", got.URL, got.Image, got.PVC, c.wantURL)
			}
			if (got.PasswordRef != nil) != c.wantRef || (!c.wantRef && c.env != nil && got.Password != "pw") {
				t.Errorf("password ref %v literal set %v", got.PasswordRef, got.Password != "")
			}
		})
	}
}
