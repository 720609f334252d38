package gateway_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tradex-mesh/tradex/gateway"
)

// TestOpenAPIDescribesEveryRoute checks the document against the routes
// the app serves, both ways, and that every schema it references exists.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	gw, err := gateway.New(gateway.Default(), gateway.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)
	r := call(t, "GET", base+"/v1/openapi.json", "", nil).ok(t, http.StatusOK)
	if r.header.Get("Content-Type") != "application/json" || r.str("openapi") != "3.1.0" {
		t.Fatalf("document: %s %.200s", r.header.Get("Content-Type"), r.raw)
	}

	documented := map[string]bool{}
	for path, item := range r.get("paths").(map[string]any) {
		for method := range item.(map[string]any) {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	param := regexp.MustCompile(`:([A-Za-z]+)`)
	served := map[string]bool{}
	for _, rt := range gw.App().GetRoutes(true) {
		if !strings.HasPrefix(rt.Path, "/v1/") || rt.Path == "/v1/openapi.json" || rt.Method == http.MethodHead {
			continue
		}
		served[rt.Method+" "+param.ReplaceAllString(rt.Path, "{$1}")] = true
	}
	for op := range served {
		if !documented[op] {
			t.Errorf("%s is served but not documented", op)
		}
	}
	for op := range documented {
		if !served[op] {
			t.Errorf("%s is documented but not served", op)
		}
	}
	if len(served) < 19 {
		t.Errorf("only %d routes served", len(served))
	}

	// Every $ref resolves.
	schemas := r.get("components.schemas").(map[string]any)
	refs := regexp.MustCompile(`"\$ref":\s*"#/components/schemas/([^"]+)"`).FindAllSubmatch(r.raw, -1)
	for _, m := range refs {
		if _, ok := schemas[string(m[1])]; !ok {
			t.Errorf("$ref %s has no schema", m[1])
		}
	}
	// The order body is the PlaceOrderRequest with its decimals and enums.
	post := r.get("paths./v1/orders.post").(map[string]any)
	body, _ := json.Marshal(post["requestBody"])
	if !strings.Contains(string(body), "tradex.order.v1.PlaceOrderRequest") {
		t.Errorf("POST /v1/orders body: %s", body)
	}
	place := schemas["tradex.order.v1.PlaceOrderRequest"].(map[string]any)["properties"].(map[string]any)
	side, _ := place["side"].(map[string]any)["enum"].([]any)
	if place["quantity"].(map[string]any)["type"] != "string" || !slices.Contains(side, any("buy")) {
		t.Errorf("PlaceOrderRequest: %v", place)
	}
	if _, ok := post["security"]; !ok {
		t.Error("POST /v1/orders needs a credential but declares no security")
	}
}
