package opensearch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver"
	"github.com/unikubehq/terraform-provider-unikube/internal/restore/driver/opensearch"
)

// Elasticsearch 8 differs from OpenSearch where the capture reads: its
// point in time is POST /<index>/_pit, and it refuses to sort on _id. No
// Elasticsearch server can run here, so canned answers in its shapes stand
// in for it.
func TestElasticsearch8_CaptureUsesItsPointInTimeAndIndexOrder(t *testing.T) {
	var mu sync.Mutex
	var closed []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		route := r.Method + " " + r.URL.Path
		switch {
		case route == "GET /":
			_, _ = io.WriteString(w, `{"name":"es01","version":{"number":"8.15.0","build_flavor":"default"},"tagline":"You Know, for Search"}`)
		case route == "GET /logs":
			_, _ = io.WriteString(w, `{"logs":{"aliases":{"all-logs":{}},"mappings":{"properties":{"m":{"type":"keyword"}}},
			  "settings":{"index.number_of_shards":"1","index.number_of_replicas":"1","index.uuid":"u1","index.creation_date":"1700000000000",
			  "index.provided_name":"logs","index.version.created":"8512000","index.routing.allocation.include._tier_preference":"data_content"}}}`)
		case route == "POST /logs/_search/point_in_time":
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":"no handler found for uri [/logs/_search/point_in_time?keep_alive=2m] and method [POST]"}`)
		case route == "POST /logs/_pit":
			_, _ = io.WriteString(w, `{"id":"pit-1"}`)
		case route == "POST /_search" && bytes.Contains(body, []byte(`"_id":"asc"`)):
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"Fielddata access on the _id field is disallowed, you can re-enable it by updating the dynamic cluster setting: indices.id_field_data.enabled"}]},"status":400}`)
		case route == "POST /_search" && bytes.Contains(body, []byte(`"_shard_doc":"asc"`)) && bytes.Contains(body, []byte(`"pit-1"`)):
			_, _ = io.WriteString(w, `{"pit_id":"pit-2","hits":{"hits":[
			  {"_index":"logs","_id":"b","_source":{"m":"second"},"sort":[0]},
			  {"_index":"logs","_id":"a","_routing":"r","_source":{"m":"first"},"sort":[1]}]}}`)
		case route == "DELETE /_pit":
			mu.Lock()
			closed = append(closed, string(body))
			mu.Unlock()
			_, _ = io.WriteString(w, `{"succeeded":true,"num_freed":1}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":"unexpected `+route+`"}`)
		}
	}))
	defer srv.Close()

	var out bytes.Buffer
	res, err := opensearch.New().Capture(context.Background(), driver.Source{URL: srv.URL + "/logs"}, &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Meta["distribution"] != "elasticsearch" || res.Meta["version"] != "8.15.0" || res.Meta["documents"] != "2" {
		t.Errorf("meta %v", res.Meta)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || lines[0] != opensearch.Magic {
		t.Fatalf("stream:\n%s", out.String())
	}
	var header struct {
		Index struct {
			Settings map[string]any             `json:"settings"`
			Aliases  map[string]json.RawMessage `json:"aliases"`
		} `json:"index"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &header); err != nil {
		t.Fatal(err)
	}
	for _, internal := range []string{"index.uuid", "index.creation_date", "index.provided_name", "index.version.created"} {
		if _, ok := header.Index.Settings[internal]; ok {
			t.Errorf("captured internal setting %s", internal)
		}
	}
	if header.Index.Settings["index.number_of_shards"] != "1" || header.Index.Aliases["all-logs"] == nil {
		t.Errorf("header %s", lines[1])
	}
	if lines[2] != `{"_id":"b","_source":{"m":"second"}}` || lines[3] != `{"_id":"a","_routing":"r","_source":{"m":"first"}}` {
		t.Errorf("documents:\n%s\n%s", lines[2], lines[3])
	}
	if len(closed) != 1 || !strings.Contains(closed[0], "pit-2") {
		t.Errorf("point in time closed with %v, want the last id pit-2", closed)
	}
}
