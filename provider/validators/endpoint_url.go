package validators

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
)

var _ validator.String = endpointURLValidator{}

// endpointSchemes are the URL schemes a local-executor target can have.
var endpointSchemes = []string{"postgres", "postgresql", "mysql", "redis", "rediss", "http", "https", "file"}

// endpointURLValidator checks the URL of a service the local executor
// restores into or captures from.
type endpointURLValidator struct{}

// EndpointURL returns a validator for a service URL: postgres:// (or
// postgresql://), mysql://, redis:// (or rediss://), http(s):// (OpenSearch,
// Elasticsearch) or file://. The value is
// usually sensitive, so diagnostics never echo it.
func EndpointURL() validator.String { return endpointURLValidator{} }

func (endpointURLValidator) Description(context.Context) string {
	return "value must be a postgres://, mysql://, redis://, http(s):// or file:// URL"
}

func (v endpointURLValidator) MarkdownDescription(ctx context.Context) string {
	return "value must be a `postgres://`, `mysql://`, `redis://`, `http(s)://` or `file://` URL"
}

func (endpointURLValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	// The URL may carry a password: report what is wrong, never the value.
	u, err := url.Parse(req.ConfigValue.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid endpoint URL",
			"The value is not a URL. Use postgres://user@host:5432/db, mysql://user@host:3306/db, redis://host:6379/0 or file:///path/to/dir.")
		return
	}
	scheme := strings.ToLower(u.Scheme)
	known := false
	for _, s := range endpointSchemes {
		if scheme == s {
			known = true
			break
		}
	}
	if !known {
		shown := scheme
		if shown == "" {
			shown = "(none)"
		}
		resp.Diagnostics.AddAttributeError(req.Path, "Unsupported endpoint URL scheme",
			fmt.Sprintf("The URL scheme is %q; supported schemes are %s.", shown, strings.Join(endpointSchemes, ", ")))
		return
	}
	if scheme == "file" {
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") || u.Host != "" {
			resp.Diagnostics.AddAttributeError(req.Path, "Invalid endpoint URL",
				"A file URL needs an absolute path and no host: file:///path/to/dir.")
		}
		return
	}
	if u.Host == "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid endpoint URL",
			fmt.Sprintf("A %s URL needs a host, e.g. %s://host:port/...", scheme, scheme))
	}
}
