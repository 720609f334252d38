package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/user/v1/userv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
)

// procedureAccess says who may call each Connect procedure through the
// gateway. User procedures act for the caller's account (auth.Interceptor
// in the service enforces it); a procedure missing here is denied.
var procedureAccess = map[string]access{
	metadatav1connect.MetadataServiceGetInstrumentProcedure:    public,
	metadatav1connect.MetadataServiceListInstrumentsProcedure:  public,
	metadatav1connect.MetadataServiceGetConfigProcedure:        public,
	metadatav1connect.MetadataServiceListConfigProcedure:       public,
	metadatav1connect.MetadataServiceWatchConfigProcedure:      public,
	metadatav1connect.MetadataServiceCreateInstrumentProcedure: adminOps,
	metadatav1connect.MetadataServiceUpdateInstrumentProcedure: adminOps,
	metadatav1connect.MetadataServiceHaltInstrumentProcedure:   adminOps,
	metadatav1connect.MetadataServiceResumeInstrumentProcedure: adminOps,
	metadatav1connect.MetadataServiceSetConfigProcedure:        adminOps,
	metadatav1connect.MetadataServiceDeleteConfigProcedure:     adminOps,

	authv1connect.AuthServiceRegisterProcedure:       public,
	authv1connect.AuthServiceLoginProcedure:          public,
	authv1connect.AuthServiceRefreshProcedure:        public,
	authv1connect.AuthServiceLogoutProcedure:         public,
	authv1connect.AuthServiceGetSigningKeysProcedure: public,
	authv1connect.AuthServiceCreateApiKeyProcedure:   userTrade,
	authv1connect.AuthServiceListApiKeysProcedure:    userRead,
	authv1connect.AuthServiceRevokeApiKeyProcedure:   keyOwner,
	authv1connect.AuthServiceVerifyApiKeyProcedure:   service,
	authv1connect.AuthServiceSetUserRolesProcedure:   adminOps,
	authv1connect.AuthServiceDisableUserProcedure:    adminOps,
	authv1connect.AuthServiceListUsersProcedure:      adminRead,

	userv1connect.UserServiceGetProfileProcedure:    userRead,
	userv1connect.UserServiceUpdateProfileProcedure: userTrade,

	walletv1connect.WalletServiceGetBalanceProcedure:     userRead,
	walletv1connect.WalletServiceListBalancesProcedure:   userRead,
	walletv1connect.WalletServiceWatchBalancesProcedure:  userRead,
	walletv1connect.WalletServiceHoldBalanceProcedure:    service, // the order service's, on the internal port
	walletv1connect.WalletServiceReleaseHoldProcedure:    service,
	walletv1connect.WalletServiceDepositProcedure:        adminTransfer,
	walletv1connect.WalletServiceWithdrawProcedure:       adminTransfer,
	walletv1connect.WalletServiceListHoldsProcedure:      adminRead,
	walletv1connect.WalletServiceGetPositionsProcedure:   userRead,
	walletv1connect.WalletServiceWatchPositionsProcedure: userRead,
	orderv1connect.OrderServicePlaceOrderProcedure:       userTrade,
	orderv1connect.OrderServiceCancelOrderProcedure:      userTrade,
	orderv1connect.OrderServiceGetOrderProcedure:         userRead,
	orderv1connect.OrderServiceListOrdersProcedure:       userRead,
	orderv1connect.OrderServiceWatchOrdersProcedure:      userRead,
	orderv1connect.OrderServiceSetLeverageProcedure:      userTrade,
	orderv1connect.OrderServiceGetLeverageProcedure:      userRead,
	orderv1connect.OrderServiceAdjustMarginProcedure:     userTrade,

	marketdatav1connect.MarketDataServiceGetBookProcedure:          public,
	marketdatav1connect.MarketDataServiceListTradesProcedure:       public,
	marketdatav1connect.MarketDataServiceGetTickerProcedure:        public,
	marketdatav1connect.MarketDataServiceListTickersProcedure:      public,
	marketdatav1connect.MarketDataServiceListCandlesProcedure:      public,
	marketdatav1connect.MarketDataServiceStreamBookProcedure:       public,
	marketdatav1connect.MarketDataServiceStreamTradesProcedure:     public,
	marketdatav1connect.MarketDataServiceStreamTickerProcedure:     public,
	marketdatav1connect.MarketDataServiceGetMarkPriceProcedure:     public,
	marketdatav1connect.MarketDataServiceStreamMarkPricesProcedure: public,
}

// serveConnect mounts each Connect service under its path, so browsers
// reach it over HTTP/1.1 with the Connect protocol or gRPC-Web (gRPC itself
// needs HTTP/2: it is served on the internal port). Server streams are
// flushed message by message (fasthttp >= 1.78). Every call passes the
// procedure's access check first; its principal rides in the context.
func (g *Gateway) serveConnect(services []rpcserver.Service) {
	g.streaming = map[string]bool{}
	for _, svc := range services {
		for _, proc := range serverStreams(svc.Name) {
			g.streaming[proc] = true
		}
		g.app.Use(svc.Path, g.connectClient, adaptor.HTTPHandler(g.guard(svc.Handler)))
	}
}

// serverStreams are the procedures of a service (by its full name, from
// the registered descriptors) that stream to the client.
func serverStreams(service string) []string {
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if err != nil || !ok {
		return nil
	}
	var out []string
	for i := range sd.Methods().Len() {
		if m := sd.Methods().Get(i); m.IsStreamingServer() {
			out = append(out, "/"+service+"/"+string(m.Name()))
		}
	}
	return out
}

// clientKey is the Fiber local (and so the adaptor's request context
// value) holding a Connect call's client address; peerKey, a server
// stream's connection.
type (
	clientKey struct{}
	peerKey   struct{}
	credKey   struct{}
)

// credResult is a Connect call's credential as connectClient verified it.
type credResult struct {
	p   *principal
	err error
}

// connectClient notes the call's client address for guard's rate limit
// (the net/http side sees only the peer, never the trusted proxies) and,
// for a server stream, its connection, so that guard can end the stream
// when the client leaves (see peerWatch); such a response closes its
// connection.
func (g *Gateway) connectClient(c *fiber.Ctx) error {
	c.Locals(clientKey{}, g.clientIP(c))
	p, err := g.credential(c) // here, where the body is at hand for a signed request
	c.Locals(credKey{}, credResult{p: p, err: err})
	c.Locals(spanKey{}, trace.SpanFromContext(c.UserContext())) // the request's span (observe)
	if g.streaming[c.Path()] {
		c.Locals(peerKey{}, c.Context().Conn())
		c.Context().Response.SetConnectionClose()
	}
	return c.Next()
}

// guard checks the credential of a Connect call against its procedure's
// access, answering refusals in the caller's protocol.
func (g *Gateway) guard(next http.Handler) http.Handler {
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, known := procedureAccess[r.URL.Path]
		if !known {
			a = denied
		}
		cred, _ := r.Context().Value(credKey{}).(credResult)
		p, err := cred.p, cred.err
		if err == nil {
			err = permit(p, a)
		}
		if err == nil {
			err = g.chargeCall(r, p)
		}
		if err != nil {
			_ = errs.Write(w, r, err) // the client went away
			return
		}
		ctx, cancel := g.detached(r.URL.Path)
		defer cancel()
		if span, ok := r.Context().Value(spanKey{}).(trace.Span); ok {
			ctx = trace.ContextWithSpan(ctx, span) // the call continues the request's trace
		}
		if conn, ok := r.Context().Value(peerKey{}).(net.Conn); ok {
			defer watchPeer(conn, cancel)()
		}
		if p != nil {
			ctx = auth.NewContext(ctx, *p)
		}
		if ip, _ := r.Context().Value(clientKey{}).(string); ip != "" {
			ctx = auth.WithClientAddress(ctx, ip)
		}
		next.ServeHTTP(w, r.WithContext(ctx)) //nolint:contextcheck // see detached: not the RequestCtx
	})
}

// chargeCall takes a Connect call (a stream: its opening) from its
// client's REST budget: the principal's, else the address's.
func (g *Gateway) chargeCall(r *http.Request, p *principal) error {
	if g.limits.cfg.PerSecond == 0 {
		return nil
	}
	ip, _ := r.Context().Value(clientKey{}).(string)
	if _, wait := g.take(ip, p); wait > 0 {
		return connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("rate limit exceeded: retry in %s", wait.Round(time.Millisecond)))
	}
	return nil
}

// corsMiddleware answers preflights and sets the CORS headers for the
// allowed origins, with the headers Connect, gRPC-Web and the REST API use.
func corsMiddleware(origins []string) fiber.Handler {
	allowHeaders := append(connectcors.AllowedHeaders(), "Authorization", "X-API-Key", "Idempotency-Key", "Traceparent", "Tracestate")
	exposeHeaders := append(connectcors.ExposedHeaders(), "X-Trace-Id", "X-RateLimit-Limit", "X-RateLimit-Remaining", "Retry-After")
	return cors.New(cors.Config{
		AllowOrigins:  strings.Join(origins, ","),
		AllowMethods:  "GET,POST,PUT,PATCH,DELETE,OPTIONS",
		AllowHeaders:  strings.Join(allowHeaders, ","),
		ExposeHeaders: strings.Join(exposeHeaders, ","),
		MaxAge:        7200,
	})
}

// detached is the context of a call served through the net/http adaptor.
// The adaptor's request context is fasthttp's RequestCtx, which fasthttp
// reuses for the next request as soon as the handler returns, so nothing
// that may outlive the call (a publish that finishes after the caller
// left, a client's connection bookkeeping) may hold it, nor may anything
// wait on it. A unary call's context ends when the handler returns; a
// server stream's also when the gateway shuts down, so that open streams
// do not hold the shutdown up.
func (g *Gateway) detached(procedure string) (context.Context, context.CancelFunc) {
	if g.streaming[procedure] {
		if g.cfg.MaxStreamLifetime > 0 {
			return context.WithTimeout(g.streams, g.cfg.MaxStreamLifetime)
		}
		return context.WithCancel(g.streams)
	}
	return context.WithCancel(context.WithoutCancel(g.streams))
}
