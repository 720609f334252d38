package gateway

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tradex-mesh/tradex/gateway/wire"
)

// serveOpenAPI answers GET /v1/openapi.json: the OpenAPI 3.1 document of
// the REST API, generated from the same route table that serves it and
// from the proto contracts, so it cannot drift from what is served.
func (g *Gateway) serveOpenAPI(c *fiber.Ctx) error {
	doc, err := g.openAPI()
	if err != nil {
		return g.writeError(c, err)
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(doc)
}

// openAPI is the document, built once per gateway.
func (g *Gateway) openAPI() ([]byte, error) {
	g.openAPIOnce.Do(func() {
		g.openAPIDoc, g.openAPIErr = json.MarshalIndent(buildOpenAPI(g.restRoutes()), "", "  ")
	})
	return g.openAPIDoc, g.openAPIErr
}

// jsonObject is a JSON object of the document.
type jsonObject = map[string]any

var fiberParam = regexp.MustCompile(`:([A-Za-z]+)`)

// buildOpenAPI describes the routes.
func buildOpenAPI(routes []route) jsonObject {
	schemas := jsonObject{"Error": errorSchema()}
	paths := jsonObject{}
	for _, rt := range routes {
		path := fiberParam.ReplaceAllString(rt.path, "{$1}")
		item, _ := paths[path].(jsonObject)
		if item == nil {
			item = jsonObject{}
			paths[path] = item
		}
		item[strings.ToLower(rt.method)] = operation(rt, schemas)
	}
	return jsonObject{
		"openapi": "3.1.0",
		"info": jsonObject{
			"title":   "TradeX REST API",
			"version": "v1",
			"description": "Decimals (prices, quantities, amounts) are strings; a request may send them as JSON numbers, " +
				"kept exactly as written. Enums are short lowercase names (\"buy\", \"limit\", \"partially_filled\"). " +
				"Errors are the Error schema with the HTTP status of its code.",
		},
		"paths": paths,
		"components": jsonObject{
			"schemas": schemas,
			"securitySchemes": jsonObject{
				"bearer": jsonObject{"type": "http", "scheme": "bearer"},
				"apiKey": jsonObject{"type": "apiKey", "in": "header", "name": "X-API-Key"},
			},
		},
	}
}

func operation(rt route, schemas jsonObject) jsonObject {
	status := rt.status
	if status == 0 {
		status = http.StatusOK
	}
	op := jsonObject{
		"summary":     rt.summary,
		"operationId": strings.TrimSuffix(string(rt.request.Name()), "Request"),
		"tags":        []string{tag(rt.path)},
		"responses": jsonObject{
			strconv.Itoa(status): jsonObject{
				"description": http.StatusText(status),
				"content":     jsonObject{"application/json": jsonObject{"schema": ref(rt.response, schemas)}},
			},
			"default": jsonObject{
				"description": "An error: the HTTP status of its code (400 invalid_argument and failed_precondition, " +
					"401 unauthenticated, 403 permission_denied, 404 not_found, 409 already_exists and aborted, " +
					"413/429 resource_exhausted, 503 unavailable, ...)",
				"content": jsonObject{"application/json": jsonObject{"schema": jsonObject{"$ref": "#/components/schemas/Error"}}},
			},
		},
	}
	if !rt.access.isPublic() {
		op["security"] = []jsonObject{{"bearer": []string{}}, {"apiKey": []string{}}}
		op["x-roles"] = rt.access.roles
		op["x-api-key-scope"] = rt.access.scope
	}
	if rt.access.name == "admin" {
		op["description"] = "Admin only."
	}
	var params []jsonObject
	for _, name := range sortedKeys(rt.params) {
		params = append(params, jsonObject{"name": name, "in": "path", "required": true,
			"schema": fieldSchema(fieldByPath(rt.request, rt.params[name]), schemas)})
	}
	for _, name := range sortedKeys(rt.query) {
		fd := fieldByPath(rt.request, rt.query[name])
		p := jsonObject{"name": name, "in": "query", "schema": fieldSchema(fd, schemas)}
		if fd.IsList() {
			p["explode"] = true
			p["description"] = "repeat the parameter or separate values with commas"
		}
		if aliases := rt.aliases[name]; aliases != nil {
			p["description"] = "also " + strings.Join(sortedKeys(aliases), ", ")
		}
		params = append(params, p)
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.body {
		op["requestBody"] = jsonObject{"required": true,
			"content": jsonObject{"application/json": jsonObject{"schema": ref(rt.request, schemas)}}}
	}
	return op
}

// tag groups a route by the resource after /v1 (or after /v1/admin).
func tag(path string) string {
	parts := strings.Split(strings.TrimPrefix(path, "/v1/"), "/")
	if parts[0] == "admin" {
		return "admin"
	}
	return parts[0]
}

// ref adds the message's schema (and those it uses) to schemas and
// returns a reference to it.
func ref(md protoreflect.MessageDescriptor, schemas jsonObject) jsonObject {
	name := string(md.FullName())
	if md.FullName() == "google.protobuf.Timestamp" {
		return jsonObject{"type": "string", "format": "date-time"}
	}
	if _, ok := schemas[name]; !ok {
		schemas[name] = jsonObject{} // placeholder: recursive messages end here
		props := jsonObject{}
		fields := md.Fields()
		for i := range fields.Len() {
			fd := fields.Get(i)
			props[fd.JSONName()] = fieldSchema(fd, schemas)
		}
		schemas[name] = jsonObject{"type": "object", "properties": props}
	}
	return jsonObject{"$ref": "#/components/schemas/" + name}
}

// fieldSchema is the schema of one field's JSON value.
func fieldSchema(fd protoreflect.FieldDescriptor, schemas jsonObject) jsonObject {
	var s jsonObject
	switch fd.Kind() {
	case protoreflect.StringKind:
		s = jsonObject{"type": "string"}
	case protoreflect.BoolKind:
		s = jsonObject{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind, protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		s = jsonObject{"type": "integer", "format": "int32"}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		s = jsonObject{"type": "integer", "format": "int64"}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		s = jsonObject{"type": "number"}
	case protoreflect.BytesKind:
		s = jsonObject{"type": "string", "contentEncoding": "base64"}
	case protoreflect.EnumKind:
		names := []string{""}
		for _, q := range wire.EnumNames(fd.Enum()) {
			n, _ := strconv.Unquote(q)
			names = append(names, n)
		}
		s = jsonObject{"type": "string", "enum": names}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		if fd.IsMap() {
			return jsonObject{"type": "object", "additionalProperties": fieldSchema(fd.MapValue(), schemas)}
		}
		s = ref(fd.Message(), schemas)
	default: // every kind is covered above
		s = jsonObject{}
	}
	if fd.IsList() {
		return jsonObject{"type": "array", "items": s}
	}
	return s
}

func errorSchema() jsonObject {
	return jsonObject{"type": "object", "required": []string{"code", "message", "details", "traceId"}, "properties": jsonObject{
		"code":    jsonObject{"type": "string", "description": "the Connect code: invalid_argument, not_found, ..."},
		"message": jsonObject{"type": "string", "description": "what is wrong; for invalid_argument it starts with the field"},
		"details": jsonObject{"type": "array", "items": jsonObject{"type": "object", "properties": jsonObject{"type": jsonObject{"type": "string"}}}},
		"traceId": jsonObject{"type": "string", "description": "names the request in logs and traces (also the X-Trace-Id header)"},
	}}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
