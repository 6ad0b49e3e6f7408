package api_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/unikubehq/terraform-provider-unikube/internal/apitypes"
	"github.com/unikubehq/terraform-provider-unikube/internal/platform/api"
	"github.com/unikubehq/terraform-provider-unikube/internal/statepkg"
)

// wireTypes names the Go type behind each schema of api/openapi.json. The
// server writes and reads these types and the client (internal/client)
// decodes and sends them, so the document, the server and the client agree
// when each schema lists exactly its type's JSON fields.
var wireTypes = map[string]any{
	"Error":                 apitypes.Error{},
	"Whoami":                apitypes.Whoami{},
	"NameDescription":       apitypes.NameDescription{},
	"DescriptionUpdate":     apitypes.DescriptionUpdate{},
	"Project":               apitypes.Project{},
	"State":                 apitypes.State{},
	"GrantRequest":          apitypes.GrantRequest{},
	"Grant":                 apitypes.Grant{},
	"AuditEvent":            apitypes.AuditEvent{},
	"ComponentSummary":      apitypes.ComponentSummary{},
	"Version":               apitypes.Version{},
	"Manifest":              statepkg.Manifest{},
	"CreateVersionRequest":  apitypes.CreateVersionRequest{},
	"BatchRequest":          apitypes.BatchRequest{},
	"RetagRequest":          apitypes.RetagRequest{},
	"PruneRequest":          apitypes.PruneRequest{},
	"PruneResponse":         apitypes.PruneResponse{},
	"JobTokenRequest":       apitypes.JobTokenRequest{},
	"UploadTokenResponse":   apitypes.UploadTokenResponse{},
	"JobTokenResponse":      apitypes.JobTokenResponse{},
	"Token":                 apitypes.Token{},
	"OIDCSettings":          apitypes.OIDCSettings{},
	"TokenExchangeRequest":  apitypes.TokenExchangeRequest{},
	"TokenExchangeResponse": apitypes.TokenExchangeResponse{},
	"CreateTokenRequest":    apitypes.CreateTokenRequest{},
	"CreateTokenResponse":   apitypes.CreateTokenResponse{},
	"Variable":              apitypes.Variable{},
	"Credential":            apitypes.Credential{},
	"ScriptRequest":         apitypes.ScriptRequest{},
	"Script":                apitypes.Script{},
	"CreateRunRequest":      apitypes.CreateRunRequest{},
	"UpdateRunRequest":      apitypes.UpdateRunRequest{},
	"Run":                   apitypes.Run{},
	"CreatedRun":            apitypes.Run{},
	"GCRequest":             apitypes.GCRequest{},
	"GCResult":              apitypes.GCResult{},
}

// Schemas without a struct: a status map and a free-form object.
var untyped = []string{"Status", "Object"}

// The Run schema is the stored run; sensitive_defaults is only in the
// answer to createRun (CreatedRun).
var notInSchema = map[string][]string{"Run": {"sensitive_defaults"}}

func TestOpenAPI_SchemasListTheWireTypesFields(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(api.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	for name, raw := range doc.Components.Schemas {
		if slices.Contains(untyped, name) {
			continue
		}
		v, ok := wireTypes[name]
		if !ok {
			t.Errorf("schema %s: no wire type; declare it in internal/apitypes and list it in wireTypes", name)
			continue
		}
		got := schemaProps(t, doc.Components.Schemas, raw)
		want := jsonFields(reflect.TypeOf(v))
		want = slices.DeleteFunc(want, func(f string) bool { return slices.Contains(notInSchema[name], f) })
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s lists %v; its Go type %T has the JSON fields %v", name, got, v, want)
		}
	}
	for name := range wireTypes {
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("wire type for %s: the OpenAPI document has no such schema", name)
		}
	}
}

// schemaProps lists a schema's properties, following allOf and $ref.
func schemaProps(t *testing.T, all map[string]json.RawMessage, raw json.RawMessage) []string {
	t.Helper()
	var s struct {
		Ref        string                     `json:"$ref"`
		Properties map[string]json.RawMessage `json:"properties"`
		AllOf      []json.RawMessage          `json:"allOf"`
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	if s.Ref != "" {
		return schemaProps(t, all, all[strings.TrimPrefix(s.Ref, "#/components/schemas/")])
	}
	var out []string
	for p := range s.Properties {
		out = append(out, p)
	}
	for _, part := range s.AllOf {
		out = append(out, schemaProps(t, all, part)...)
	}
	return out
}

// jsonFields lists the names encoding/json gives a struct's fields,
// embedded structs' fields included.
func jsonFields(rt reflect.Type) []string {
	var out []string
	for i := range rt.NumField() {
		f := rt.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
