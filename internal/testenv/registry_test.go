package testenv_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestStartRegistry_StoresImagesForItsUserOnly(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := testenv.StartRegistry(t)
	t.Logf("registry ready at %s in %s", r.Host, time.Since(start).Round(time.Millisecond))

	ref, err := name.ParseReference(r.Host + "/testenv/random:1")
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	auth := remote.WithAuth(&authn.Basic{Username: r.User, Password: r.Password})
	if err := remote.Write(ref, img, auth, remote.WithContext(t.Context())); err != nil {
		t.Fatalf("push with the registry's credentials: %v", err)
	}
	got, err := remote.Image(ref, auth, remote.WithContext(t.Context()))
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("pulled %s, pushed %s", d, want)
	}

	_, err = remote.Image(ref, remote.WithContext(t.Context()))
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous pull: %v, want 401", err)
	}
}
