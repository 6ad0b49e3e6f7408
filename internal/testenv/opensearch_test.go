package testenv_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/unikubehq/terraform-provider-unikube/internal/testenv"
)

func TestStartOpenSearch_IndexesAndSearches(t *testing.T) {
	t.Parallel()
	start := time.Now()
	o := testenv.StartOpenSearch(t)
	t.Logf("opensearch ready on port %d in %s", o.Port, time.Since(start).Round(time.Millisecond))

	// analysis-common (custom analyzers) and mapper-extras are loaded.
	do(t, http.DefaultClient, "PUT", o.URL+"/books", `{
	  "settings": {"analysis": {"analyzer": {"folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]}}}},
	  "mappings": {"properties": {"title": {"type": "text", "analyzer": "folded"}, "n": {"type": "scaled_float", "scaling_factor": 10}}}}`, 200)
	do(t, http.DefaultClient, "PUT", o.URL+"/books/_doc/1?refresh=true", `{"title": "Été à Zürich", "n": 1.5}`, 201)
	got := do(t, http.DefaultClient, "POST", o.URL+"/books/_search", `{"query": {"match": {"title": "zurich"}}}`, 200)
	if !strings.Contains(got, `"_id":"1"`) {
		t.Fatalf("search for the folded word found nothing: %s", got)
	}
}

func TestOpenSearchFront_RequiresPasswordAndTLS(t *testing.T) {
	t.Parallel()
	o := testenv.StartOpenSearch(t)
	f := o.SecureFront(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(f.CA.CertPEM)
	trusted := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	do(t, trusted, "GET", f.URL+"/", "", 401)
	u := strings.Replace(f.URL, "https://", "https://"+f.User+":"+f.Password+"@", 1)
	do(t, trusted, "GET", u+"/_cluster/health", "", 200)
	if _, err := http.Get(u + "/"); err == nil {
		t.Fatal("a client without the CA trusted the front's certificate")
	}
}

func do(t *testing.T, c *http.Client, method, url, body string, want int) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d: %s", method, url, resp.Status, want, b)
	}
	return string(b)
}
