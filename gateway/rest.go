package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wire"
)

// endpoint is the Connect call behind a route, typed away.
type endpoint struct {
	newRequest func() proto.Message
	call       func(ctx context.Context, req proto.Message) (proto.Message, error)
	request    protoreflect.MessageDescriptor
	response   protoreflect.MessageDescriptor
}

// unary wraps one unary Connect method (of a generated client or handler).
func unary[Req, Resp any, PReq interface {
	*Req
	proto.Message
}, PResp interface {
	*Resp
	proto.Message
}](fn func(context.Context, PReq) (PResp, error)) endpoint {
	return endpoint{
		newRequest: func() proto.Message { return PReq(new(Req)) },
		call: func(ctx context.Context, req proto.Message) (proto.Message, error) {
			resp, err := fn(ctx, req.(PReq)) //nolint:forcetypeassert // newRequest made it
			if err != nil {
				return nil, err
			}
			return resp, nil
		},
		request:  PReq(new(Req)).ProtoReflect().Descriptor(),
		response: PResp(new(Resp)).ProtoReflect().Descriptor(),
	}
}

// route is one REST endpoint: where it is, who may call it, and how its
// path, query and body fill the Connect request.
type route struct {
	method  string
	path    string // Fiber syntax, e.g. /v1/orders/:orderId
	summary string
	access  access
	// params maps each path parameter to the request field it sets.
	params map[string]string
	// query maps each accepted query parameter to the request field it sets
	// (a dotted path such as "page.pageSize"); a repeated field takes the
	// parameter repeated or comma-separated.
	query map[string]string
	// body: the JSON body is the request message (minus what path and
	// account set).
	body bool
	// account is how REST names the request's account_id field in errors
	// ("accountId"); empty: the route acts for no account.
	account string
	// idempotency is the request field the Idempotency-Key header fills
	// when the body leaves it empty ("" for none).
	idempotency string
	// aliases maps a query parameter's other spellings to the values the
	// request field takes ("1m" -> "one_minute").
	aliases map[string]map[string]string
	// status is the HTTP status of success (200 when zero).
	status int
	endpoint
}

// serveREST mounts every route under the middleware every /v1 request
// passes: credential, rate limit, then the route's own access check.
func (g *Gateway) serveREST() {
	v1 := g.app.Group("/v1", g.authenticate, g.rateLimit)
	for _, rt := range g.restRoutes() {
		path := strings.TrimPrefix(rt.path, "/v1")
		if rt.method == fiber.MethodGet {
			v1.Get(path, g.handle(rt)) // HEAD too: the same headers, no body
			continue
		}
		v1.Add(rt.method, path, g.handle(rt))
	}
	g.app.Get("/v1/openapi.json", g.serveOpenAPI)
}

// handle is the Fiber handler of one route.
func (g *Gateway) handle(rt route) fiber.Handler {
	status := rt.status
	if status == 0 {
		status = http.StatusOK
	}
	cacheable := rt.method == fiber.MethodGet && rt.access.isPublic()
	return func(c *fiber.Ctx) error {
		if cacheable {
			c.Set(fiber.HeaderCacheControl, "no-cache")
		} else {
			c.Set(fiber.HeaderCacheControl, "no-store")
		}
		p, err := authorize(c, rt.access)
		if err != nil {
			return g.writeError(c, err)
		}
		if n := len(c.Body()); n > g.cfg.RESTBodyLimit {
			return g.writeErrorStatus(c, http.StatusRequestEntityTooLarge, connect.NewError(connect.CodeResourceExhausted,
				fmt.Errorf("request body of %d bytes is over the limit of %d", n, g.cfg.RESTBodyLimit)))
		}
		req, err := g.request(c, rt, p)
		if err != nil {
			return g.writeError(c, err)
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), g.cfg.RequestTimeout)
		defer cancel()
		ctx = auth.WithClientAddress(ctx, g.clientIP(c))
		if _, ok := principalOf(c); ok {
			ctx = auth.NewContext(ctx, p) // services that check their caller (auth, user) see who it is
		}
		resp, err := rt.call(ctx, req)
		if err != nil {
			return g.writeError(c, err)
		}
		body := wire.Append(c.Response().Body()[:0], resp)
		if cacheable {
			tag := etag(body)
			c.Set(fiber.HeaderETag, tag)
			if etagMatches(c.Get(fiber.HeaderIfNoneMatch), tag) {
				c.Response().ResetBody()
				return c.SendStatus(http.StatusNotModified)
			}
		}
		c.Status(status)
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(body)
	}
}

// checkContentType accepts a JSON body: no Content-Type, or
// application/json with at most a charset of utf-8.
func checkContentType(ct string) error {
	if ct == "" {
		return nil
	}
	media, params, err := mime.ParseMediaType(ct)
	if err == nil && media == fiber.MIMEApplicationJSON {
		for k, v := range params {
			if k != "charset" || !strings.EqualFold(v, "utf-8") {
				err = errors.New("bad parameter")
			}
		}
		if err == nil {
			return nil
		}
	}
	return invalidArgument("Content-Type", "must be application/json (with charset=utf-8 at most), not "+ct)
}

// request builds the Connect request of a route from the HTTP request.
func (g *Gateway) request(c *fiber.Ctx, rt route, p principal) (proto.Message, error) {
	req := rt.newRequest()
	if rt.body {
		body := c.Body()
		if err := checkContentType(c.Get(fiber.HeaderContentType)); err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(body)) == 0 {
			body = []byte("{}") // a POST with nothing to say (halt, resume)
		}
		if err := wire.Unmarshal(body, req); err != nil {
			return nil, fieldError(err)
		}
	}
	values, err := parameters(c, rt)
	if err != nil {
		return nil, err
	}
	if len(values) > 0 {
		if err := wire.Set(req, values); err != nil {
			return nil, fieldError(err)
		}
	}
	if rt.idempotency != "" {
		if key := c.Get("Idempotency-Key"); key != "" {
			setIfEmpty(req, rt.idempotency, key)
		}
	}
	if rt.account != "" {
		if err := auth.ActFor(req, p, rt.account); err != nil {
			return nil, err
		}
	}
	return req, nil
}

// parameters gathers the path and query parameters of a route into the
// nested shape of its request message, refusing any it does not take.
func parameters(c *fiber.Ctx, rt route) (map[string]any, error) {
	values := map[string]any{}
	for name, field := range rt.params {
		v, err := pathParameter(c.Params(name))
		if err != nil {
			return nil, invalidArgument(name, err.Error())
		}
		setPath(values, field, v)
	}
	args := c.Context().QueryArgs()
	for key := range args.All() {
		name := string(key)
		field, ok := rt.query[name]
		if !ok {
			return nil, invalidArgument(name, "is not a query parameter of "+rt.method+" "+rt.path)
		}
		var list []any
		for _, v := range args.PeekMulti(name) {
			if !utf8.Valid(v) {
				return nil, invalidArgument(name, "is not valid UTF-8")
			}
			for part := range strings.SplitSeq(string(v), ",") {
				if alias, ok := rt.aliases[name][part]; ok {
					part = alias
				}
				list = append(list, part)
			}
		}
		fd := fieldByPath(rt.request, field)
		switch {
		case fd != nil && fd.IsList():
			setPath(values, field, list)
		case fd != nil && fd.Kind() == protoreflect.BoolKind:
			// A query value is text: ?includeZero=true, =1, =false.
			b, err := strconv.ParseBool(list[len(list)-1].(string))
			if err != nil {
				return nil, invalidArgument(name, "must be true or false")
			}
			setPath(values, field, b)
		default:
			setPath(values, field, list[len(list)-1])
		}
	}
	return values, nil
}

// maxPathParameter bounds a path parameter (symbols, assets, order ids).
const maxPathParameter = 128

// pathParameter percent-decodes a path parameter and accepts it only when
// it is an identifier: letters, digits, '-', '_' and '.', at most 128 bytes
// (so /v1/balances/USDT%00 is refused, not answered with a zero balance).
func pathParameter(raw string) (string, error) {
	v, err := url.PathUnescape(raw)
	if err != nil {
		return "", errors.New("is not valid percent-encoding")
	}
	if v == "" || len(v) > maxPathParameter {
		return "", fmt.Errorf("must be 1 to %d characters", maxPathParameter)
	}
	if i := strings.IndexFunc(v, notIdentifier); i >= 0 {
		return "", fmt.Errorf("may only hold letters, digits, '-', '_' and '.' (found %q)", v[i])
	}
	return v, nil
}

// notIdentifier reports a rune a path parameter may not hold.
func notIdentifier(r rune) bool {
	ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
	return !ok
}

// setPath sets values[a][b]... for the dotted path "a.b".
func setPath(values map[string]any, path string, v any) {
	head, rest, nested := strings.Cut(path, ".")
	if !nested {
		values[head] = v
		return
	}
	sub, ok := values[head].(map[string]any)
	if !ok {
		sub = map[string]any{}
		values[head] = sub
	}
	setPath(sub, rest, v)
}

func fieldByPath(md protoreflect.MessageDescriptor, path string) protoreflect.FieldDescriptor {
	head, rest, nested := strings.Cut(path, ".")
	fd := md.Fields().ByJSONName(head)
	if fd == nil || !nested {
		return fd
	}
	if fd.Message() == nil {
		return nil
	}
	return fieldByPath(fd.Message(), rest)
}

// setIfEmpty sets the top-level string field named (by JSON name) to v
// when it is empty.
func setIfEmpty(m proto.Message, jsonName, v string) {
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByJSONName(jsonName)
	if fd != nil && r.Get(fd).String() == "" {
		r.Set(fd, protoreflect.ValueOfString(v))
	}
}

// invalidArgument is the InvalidArgument error naming a field.
func invalidArgument(field, reason string) error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %s", field, reason))
}

// fieldError turns a wire decoding error into InvalidArgument.
func fieldError(err error) error {
	return connect.NewError(connect.CodeInvalidArgument, err)
}
