package records

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func recordSecret(name, release, status, revision, data string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", Labels: map[string]string{
		LabelOwner: Owner, LabelName: release, LabelStatus: status, LabelRevision: revision}},
		Type: SecretType, Data: map[string][]byte{dataKey: []byte(data)}}
}

// A record Secret that is not a record (damaged, or made by hand) is
// listed as unreadable: it neither stops the next apply from recording
// itself nor becomes a rollback target.
func TestList_AnUnreadableRecordStopsNothing(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(recordSecret(SecretName("web", 1), "web", StatusApplied, "1", "{not json"))
	rec := &Record{Release: "web", State: "shop/seed", Digest: "sha256:b", Status: StatusApplied, Components: []Component{}}
	if err := Write(ctx, cs, "ns", rec); err != nil {
		t.Fatalf("one damaged record stops every later apply from being recorded: %v", err)
	}
	rs, err := List(ctx, cs, "ns", "web")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 || rs[0].Status != StatusUnreadable || rs[0].Revision != 1 || rs[1].Revision != 2 {
		t.Fatalf("records %+v: want the damaged one as unreadable revision 1, then revision 2", rs)
	}
	if _, err := RollbackTarget(rs, "", 1); err == nil {
		t.Error("rolled back to an unreadable record")
	}
}

// A Secret labelled as release web's record whose data claims release
// db's name must not make an apply of web mark db's record superseded.
func TestWrite_NeverTouchesAnotherReleasesRecords(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(
		recordSecret(SecretName("db", 1), "db", StatusApplied, "1", `{"release":"db","revision":1,"state":"shop/seed","digest":"sha256:a","components":[]}`),
		recordSecret("planted", "web", StatusApplied, "1", `{"release":"db","revision":1,"state":"shop/seed","digest":"sha256:a","components":[]}`),
	)
	rec := &Record{Release: "web", State: "shop/seed", Digest: "sha256:b", Status: StatusApplied, Components: []Component{}}
	if err := Write(ctx, cs, "ns", rec); err != nil {
		t.Fatal(err)
	}
	s, err := cs.CoreV1().Secrets("ns").Get(ctx, SecretName("db", 1), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Labels[LabelStatus]; got != StatusApplied {
		t.Errorf("release db's record is now %q after an apply of web, want %q", got, StatusApplied)
	}
}
