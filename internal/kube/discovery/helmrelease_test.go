package discovery

import (
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/kube/quiesce"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

func shopRelease() *Release {
	return &Release{Name: "shop", Workloads: []ReleaseWorkload{
		{Workload: quiesce.Workload{Kind: quiesce.StatefulSet, Name: "shop-db"}, Images: []string{"localhost/postgres:15"}, Claims: []string{"data-shop-db-0"}},
		{Workload: quiesce.Workload{Kind: quiesce.Deployment, Name: "shop-cache"}, Images: []string{"redis:7"}},
		{Workload: quiesce.Workload{Kind: quiesce.Deployment, Name: "shop-web"}, Images: []string{"busybox"}, Claims: []string{"shop-uploads", "shop-logs"}},
	}}
}

func TestRelease_MapByImageKindAndPVCName(t *testing.T) {
	ms, err := shopRelease().Map([]Component{
		{Name: "db", Kind: statepkg.KindPostgres}, {Name: "cache", Kind: statepkg.KindRedis}, {Name: "uploads", Kind: statepkg.KindVolume},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Component: "db", Kind: statepkg.KindPostgres, Workload: "StatefulSet/shop-db"},
		{Component: "cache", Kind: statepkg.KindRedis, Workload: "Deployment/shop-cache"},
		{Component: "uploads", Kind: statepkg.KindVolume, Workload: "Deployment/shop-web", PVC: "shop-uploads"},
	}
	for i := range want {
		if ms[i].Component != want[i].Component || ms[i].Workload != want[i].Workload || ms[i].PVC != want[i].PVC {
			t.Errorf("mapping %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
}

func TestRelease_MapSaysWhatMatchesNothingOrSeveral(t *testing.T) {
	for _, c := range []struct {
		name     string
		comps    []Component
		explicit map[string]string
		want     string
	}{
		{"no mysql", []Component{{Name: "db", Kind: statepkg.KindMySQL}}, nil, "release shop: component db (mysql) maps to no workload"},
		{"several PVCs", []Component{{Name: "files", Kind: statepkg.KindVolume}}, nil, "component files (volume) maps to several PVCs (shop-logs, shop-uploads)"},
		{"unknown component in --map", []Component{{Name: "db", Kind: statepkg.KindPostgres}}, map[string]string{"nope": "StatefulSet/x"}, `a mapping names component "nope", which the version does not have (it has db)`},
		{"PVC nobody mounts", []Component{{Name: "files", Kind: statepkg.KindVolume}}, map[string]string{"files": "pvc/other"}, "no workload of release shop mounts PVC other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := shopRelease().Map(c.comps, c.explicit)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "--map") {
				t.Errorf("err = %v, want %q and no flag name", err, c.want)
			}
		})
	}
	ms, err := shopRelease().Map([]Component{{Name: "files", Kind: statepkg.KindVolume}}, map[string]string{"files": "pvc/shop-logs"})
	if err != nil || ms[0].PVC != "shop-logs" || ms[0].Workload != "Deployment/shop-web" {
		t.Errorf("explicit pvc: %+v %v", ms, err)
	}
}

func TestRelease_ComponentsProposedForACapture(t *testing.T) {
	got := shopRelease().Components()
	var names []string
	for _, m := range got {
		names = append(names, m.Component+":"+string(m.Kind))
	}
	if s := strings.Join(names, ","); s != "db:postgres,cache:redis,uploads:volume,logs:volume" {
		t.Errorf("components = %s", s)
	}
}
