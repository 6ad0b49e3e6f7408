package opensearch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// pageSize is how many documents the first search page returns; later
// pages hold about pageBytes of sources, between minPage and maxPage
// documents (the servers' default max_result_window). Each page sorted by
// _id costs the node a pass over the index, so small documents want big
// pages: a million of them take 16 minutes in pages of 1000.
const (
	pageSize  = 1000
	pageBytes = 8 << 20
	minPage   = 100
	maxPage   = 10000
)

// nextPageSize sizes the next page from the documents of the last one.
func nextPageSize(hits []hit) int {
	var n int
	for _, h := range hits {
		n += len(h.Source) + len(h.ID) + 32
	}
	if len(hits) == 0 || n == 0 {
		return pageSize
	}
	return max(minPage, min(maxPage, pageBytes/(n/len(hits)+1)))
}

type hit struct {
	ID      string          `json:"_id"`
	Routing string          `json:"_routing"`
	Source  json.RawMessage `json:"_source"`
	Sort    []any           `json:"sort"`
}

type searchAnswer struct {
	PitID    string `json:"pit_id"` // Elasticsearch may hand out a new one
	ScrollID string `json:"_scroll_id"`
	Hits     struct {
		Hits []hit `json:"hits"`
	} `json:"hits"`
}

// eachDoc calls fn with every document of a concrete index in _id order,
// through a point in time (OpenSearch 2.4+ or Elasticsearch 7.10+) so
// writes during the capture do not move documents between pages, else a
// scroll.
func (c *client) eachDoc(ctx context.Context, index string, fn func(hit) error) error {
	pit, closePit, err := c.openPit(ctx, index)
	if err != nil {
		return err
	}
	if pit == "" {
		return c.scrollDocs(ctx, index, fn)
	}
	// Elasticsearch may hand out a new id with each page; close the last.
	defer func() { closePit(pit) }()
	var after []any
	sortBy := "_id"
	size := pageSize
	for {
		body := map[string]any{
			"size": size, "track_total_hits": false,
			"pit":  map[string]any{"id": pit, "keep_alive": "2m"},
			"sort": []any{map[string]any{sortBy: "asc"}},
		}
		if after != nil {
			body["search_after"] = after
		}
		var ans searchAnswer
		err := c.do(ctx, http.MethodPost, "/_search", body, &ans)
		if after == nil && sortBy == "_id" && refusesIDSort(err) {
			// Elasticsearch 8 keeps no _id field data: take the index
			// order, which is stable within the point in time but dedups
			// worse across versions.
			sortBy = "_shard_doc"
			continue
		}
		if err != nil {
			return err
		}
		if ans.PitID != "" {
			pit = ans.PitID
		}
		for _, h := range ans.Hits.Hits {
			if err := fn(h); err != nil {
				return err
			}
		}
		if len(ans.Hits.Hits) < size {
			return nil
		}
		after = ans.Hits.Hits[len(ans.Hits.Hits)-1].Sort
		size = nextPageSize(ans.Hits.Hits)
	}
}

// refusesIDSort tells the error of a server that cannot sort on _id.
func refusesIDSort(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.Status == http.StatusBadRequest && strings.Contains(he.Body, "_id")
}

// openPit opens a point in time, OpenSearch's API first, then
// Elasticsearch's; "" when the server has neither.
func (c *client) openPit(ctx context.Context, index string) (string, func(id string), error) {
	var os struct {
		PitID string `json:"pit_id"`
	}
	err := c.do(ctx, http.MethodPost, "/"+esc(index)+"/_search/point_in_time?keep_alive=2m", nil, &os)
	if err == nil && os.PitID != "" {
		return os.PitID, func(id string) {
			_ = c.do(context.WithoutCancel(ctx), http.MethodDelete, "/_search/point_in_time", map[string]any{"pit_id": []string{id}}, nil)
		}, nil
	}
	if s := statusOf(err); err != nil && s == 0 {
		return "", nil, err
	}
	var es struct {
		ID string `json:"id"`
	}
	err = c.do(ctx, http.MethodPost, "/"+esc(index)+"/_pit?keep_alive=2m", nil, &es)
	if err == nil && es.ID != "" {
		return es.ID, func(id string) {
			_ = c.do(context.WithoutCancel(ctx), http.MethodDelete, "/_pit", map[string]any{"id": id}, nil)
		}, nil
	}
	if s := statusOf(err); err != nil && s == 0 {
		return "", nil, err
	}
	return "", func(string) {}, nil
}

// scrollDocs is eachDoc for servers without point in time.
func (c *client) scrollDocs(ctx context.Context, index string, fn func(hit) error) error {
	var ans searchAnswer
	body := map[string]any{"size": pageSize, "sort": []any{map[string]any{"_id": "asc"}}}
	if err := c.do(ctx, http.MethodPost, "/"+esc(index)+"/_search?scroll=2m", body, &ans); err != nil {
		return fmt.Errorf("scroll: %w", err)
	}
	defer func() {
		if ans.ScrollID != "" {
			_ = c.do(context.WithoutCancel(ctx), http.MethodDelete, "/_search/scroll", map[string]any{"scroll_id": []string{ans.ScrollID}}, nil)
		}
	}()
	for len(ans.Hits.Hits) > 0 {
		for _, h := range ans.Hits.Hits {
			if err := fn(h); err != nil {
				return err
			}
		}
		id := ans.ScrollID
		ans = searchAnswer{}
		if err := c.do(ctx, http.MethodPost, "/_search/scroll", map[string]any{"scroll": "2m", "scroll_id": id}, &ans); err != nil {
			return fmt.Errorf("scroll: %w", err)
		}
		if ans.ScrollID == "" {
			ans.ScrollID = id
		}
	}
	return nil
}
