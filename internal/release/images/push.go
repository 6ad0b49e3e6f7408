package images

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Environment variables holding basic-auth credentials for a push. Without
// them the Docker config file's credentials apply ($DOCKER_CONFIG or
// ~/.docker/config.json, credential helpers included), else none.
const (
	EnvRegistryUser     = "UNIKUBE_REGISTRY_USER"
	EnvRegistryPassword = "UNIKUBE_REGISTRY_PASSWORD" //nolint:gosec // a variable's name, not a credential
)

// Credentials says how a push authenticates.
type Credentials struct {
	Keychain authn.Keychain
	Via      string // for messages, e.g. `basic auth as "ci" (UNIKUBE_REGISTRY_USER)`; never the secret
}

// CredentialsFromEnv picks basic auth from UNIKUBE_REGISTRY_USER and
// UNIKUBE_REGISTRY_PASSWORD when the user is set, else the Docker config
// file (which falls back to anonymous for registries it does not name).
func CredentialsFromEnv(getenv func(string) string) (Credentials, error) {
	user, pass := getenv(EnvRegistryUser), getenv(EnvRegistryPassword)
	switch {
	case user != "" && pass == "":
		return Credentials{}, fmt.Errorf("%s is set but %s is empty: set both for basic auth, or neither to use the Docker config file", EnvRegistryUser, EnvRegistryPassword)
	case user == "" && pass != "":
		return Credentials{}, fmt.Errorf("%s is set but %s is empty: set both for basic auth, or neither to use the Docker config file", EnvRegistryPassword, EnvRegistryUser)
	case user != "":
		return Credentials{
			Keychain: staticKeychain{authn.FromConfig(authn.AuthConfig{Username: user, Password: pass})},
			Via:      fmt.Sprintf("basic auth as %q from %s/%s", user, EnvRegistryUser, EnvRegistryPassword),
		}, nil
	}
	return Credentials{Keychain: authn.DefaultKeychain, Via: "the Docker config file's credentials (or anonymous)"}, nil
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

// AuthError says the registry refused the push's credentials (HTTP 401 or 403).
type AuthError struct {
	Ref string // what was being pushed
	Via string // how it authenticated
	Err error
}

func (e *AuthError) Error() string {
	return fmt.Sprintf("push %s: the registry refused the credentials (%s); check them, set %s and %s, or log in to the registry in the Docker config file (docker login): %v",
		e.Ref, e.Via, EnvRegistryUser, EnvRegistryPassword, e.Err)
}

func (e *AuthError) Unwrap() error { return e.Err }

// PushOptions are how Push reaches the registry.
type PushOptions struct {
	Credentials Credentials
	Transport   http.RoundTripper // nil: the default
}

// Reference is where the image name is pushed under registry ("host[:port]/path"):
// registry/name:tag. insecure allows plain HTTP to a registry that is not on
// loopback (loopback registries are reached over HTTP anyway).
func Reference(registry, imageName, tag string, insecure bool) (name.Tag, error) {
	registry = strings.TrimSuffix(strings.TrimSpace(registry), "/")
	if registry == "" {
		return name.Tag{}, errors.New("no registry: give host[:port][/path], e.g. ghcr.io/acme or 127.0.0.1:5000/unikube")
	}
	if strings.Contains(registry, "://") {
		return name.Tag{}, fmt.Errorf("registry %q: give host[:port][/path] without a scheme", registry)
	}
	var opts []name.Option
	opts = append(opts, name.StrictValidation)
	if insecure {
		opts = append(opts, name.Insecure)
	}
	t, err := name.NewTag(registry+"/"+imageName+":"+tag, opts...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("image reference %s/%s:%s: %w", registry, imageName, tag, err)
	}
	return t, nil
}

// Push uploads idx (with all its platforms) as ref.
func Push(ctx context.Context, idx v1.ImageIndex, ref name.Reference, o PushOptions) error {
	kc := o.Credentials.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
	if o.Transport != nil {
		opts = append(opts, remote.WithTransport(o.Transport))
	}
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return pushError(ref, o.Credentials.Via, err)
	}
	return nil
}

func pushError(ref name.Reference, via string, err error) error {
	if via == "" {
		via = "the Docker config file's credentials (or anonymous)"
	}
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return &AuthError{Ref: ref.String(), Via: via, Err: err}
	}
	return fmt.Errorf("push %s: %w", ref, err)
}
