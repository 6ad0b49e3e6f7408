package commands

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/client"
)

// TestCommands_LoginTokenGoesOnlyToItsPlatform: the token of helm state
// login belongs to the platform it was given for. A command (or a TAB
// completion, which runs without the user pressing Enter) whose endpoint
// comes from --endpoint or UNIKUBE_ENDPOINT and names another server does
// not send it there: it stops and says how to log in to that platform.
// UNIKUBE_TOKEN, set along with the endpoint, is still used as given.
func TestCommands_LoginTokenGoesOnlyToItsPlatform(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		http.Error(rw, "no", http.StatusUnauthorized)
	}))
	defer other.Close()

	delete(w.env, client.EnvToken)
	delete(w.env, client.EnvEndpoint)
	t.Setenv(client.EnvToken, "")
	t.Setenv(client.EnvEndpoint, "")
	if _, errOut, code := w.run(t, w.srv.AdminToken+"\n", "login", w.srv.URL+"/", "--token-stdin"); code != 0 {
		t.Fatalf("login: %d %q", code, errOut)
	}
	if out, errOut, code := w.run(t, "", "list", "shop", "--endpoint", w.srv.URL); code != 0 || !strings.Contains(out, "shop/seed") {
		t.Fatalf("list on the login's own platform by --endpoint: %d %q %q", code, out, errOut)
	}

	if _, errOut, code := w.run(t, "", "list", "shop", "--endpoint", other.URL); code != 2 || !strings.Contains(errOut, "helm state login "+other.URL) {
		t.Errorf("--endpoint of another server: exit %d %q, want 2 saying to log in there", code, errOut)
	}
	w.env[client.EnvEndpoint] = other.URL
	if _, errOut, code := w.run(t, "", "list", "shop"); code != 2 || !strings.Contains(errOut, "UNIKUBE_TOKEN") {
		t.Errorf("UNIKUBE_ENDPOINT of another server: exit %d %q, want 2", code, errOut)
	}
	if out, _, _ := w.run(t, "", "__complete", "show", "sh"); strings.Contains(out, "shop") {
		t.Errorf("completion against another server completed %q", out)
	}
	mu.Lock()
	for _, a := range seen {
		if strings.Contains(a, w.srv.AdminToken) {
			t.Errorf("the other server received the login's token (%q)", a)
		}
	}
	mu.Unlock()

	// A token given with the endpoint is the user's choice for it.
	w.env[client.EnvToken] = "uks_for-the-other-server"
	_, _, _ = w.run(t, "", "list", "shop")
	mu.Lock()
	defer mu.Unlock()
	if len(seen) == 0 || seen[len(seen)-1] != "Bearer uks_for-the-other-server" {
		t.Errorf("UNIKUBE_TOKEN with UNIKUBE_ENDPOINT: the other server saw %q", seen)
	}
}
