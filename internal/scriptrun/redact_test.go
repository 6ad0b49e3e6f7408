package scriptrun

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

func TestRedactor_MasksSecretsTheirBase64AndTheLinesOfMultiLineOnes(t *testing.T) {
	pem := "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----\n"
	r := newRedactor(append(sensitiveValues([]variable{
		{Name: "TOKEN", Value: "s3cr3t-token", Sensitive: true},
		{Name: "PREFIX", Value: "s3cr3t", Sensitive: true},
		{Name: "PIN", Value: "42", Sensitive: true},
		{Name: "USER", Value: "ann"},
	}), "db-Passw0rd", pem))
	cases := []struct{ in, want string }{
		{"auth with s3cr3t-token failed", "auth with (sensitive) failed"},
		{"prefix s3cr3t and s3cr3t-token", "prefix (sensitive) and (sensitive)"},
		{"user ann, pin 42", "user ann, pin 42"},
		{"password=db-Passw0rd\n", "password=(sensitive)\n"},
		{"data:\n  password: " + base64.StdEncoding.EncodeToString([]byte("db-Passw0rd")) + "\n", "data:\n  password: (sensitive)\n"},
		{"key line MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n", "key line (sensitive)\n"},
		{"", ""},
	}
	for _, tc := range cases {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := r.String(pem); strings.Contains(got, "MIIE") {
		t.Errorf("whole PEM not masked: %q", got)
	}
	if got := newRedactor(nil).String("s3cr3t"); got != "s3cr3t" {
		t.Errorf("no secrets: %q", got)
	}
}

func TestRedactor_WithheldLetsNothingThrough(t *testing.T) {
	r := withheld(errors.New("forbidden"))
	if got := r.String("password=db-Passw0rd\n"); strings.Contains(got, "db-Passw0rd") || !strings.Contains(got, "withheld") {
		t.Fatalf("withheld: %q", got)
	}
}

func TestCredentialValues_ReadsTheMountedKeysOrAllOfASecret(t *testing.T) {
	cs := fake.NewClientset(
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns"}, Data: map[string][]byte{"password": []byte("pw-1234"), "unmounted": []byte("other-1234")}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns"}, Data: map[string][]byte{"key": []byte("key-1234")}},
	)
	got, err := credentialValues(context.Background(), cs, "ns", []client.Credential{{Secret: "db", Keys: []string{"password"}}, {Secret: "api"}, {Secret: "missing"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "pw-1234,key-1234" {
		t.Fatalf("values: %q", got)
	}
}
