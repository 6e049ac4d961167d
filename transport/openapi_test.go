package transport

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes checks that openapi.json documents every
// registered route and nothing else.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	srv, err := NewServer(Config{Store: newFakeStore(t), Rights: fakeRights{}, Identity: testIdentity(t), Devices: nopHandler{}, UI: nopHandler{}})
	if err != nil {
		t.Fatal(err)
	}
	var registered []string
	for p := range srv.known {
		registered = append(registered, p)
	}
	slices.Sort(documented)
	slices.Sort(registered)
	if !slices.Equal(documented, registered) {
		for _, p := range registered {
			if !slices.Contains(documented, p) {
				t.Errorf("route %s is not in openapi.json", p)
			}
		}
		for _, p := range documented {
			if !slices.Contains(registered, p) {
				t.Errorf("openapi.json documents %s, which is not registered", p)
			}
		}
	}
	// Every $ref resolves.
	var whole map[string]any
	json.Unmarshal(openAPIDocument, &whole)
	schemas := whole["components"].(map[string]any)["schemas"].(map[string]any)
	for _, ref := range findRefs(whole) {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		if _, found := schemas[name]; !ok || !found {
			t.Errorf("unresolved $ref %s", ref)
		}
	}
}

func findRefs(v any) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if s, ok := x.(string); ok && k == "$ref" {
				out = append(out, s)
			}
			out = append(out, findRefs(x)...)
		}
	case []any:
		for _, x := range v {
			out = append(out, findRefs(x)...)
		}
	}
	return out
}
