// Package rpcserver serves Connect handlers on the internal port.
//
// It is plain net/http speaking HTTP/1.1 and unencrypted HTTP/2 (h2c) on one
// listener, so gRPC, gRPC-Web and Connect clients all reach the same
// handlers; with Options.TLS it speaks TLS instead (HTTP/2 through ALPN,
// and mutual TLS when the configuration verifies client certificates). It always serves gRPC health (grpc.health.v1) and server
// reflection (v1 and v1alpha), so standard tooling such as `buf curl` and
// grpcurl works against it.
package rpcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
)

// Service is one Connect service to mount: the path prefix and handler
// returned by a generated New<Service>Handler, and the service's full name
// for health and reflection.
type Service struct {
	// Name is the fully-qualified protobuf service name, e.g. "tradex.order.v1.OrderService".
	Name string
	// Path is the URL prefix the handler serves, e.g. "/tradex.order.v1.OrderService/".
	Path string
	// Handler serves every procedure of the service.
	Handler http.Handler
}

// Server is the internal Connect server.
type Server struct {
	http     *http.Server
	checker  grpchealth.Checker
	stopping atomic.Bool
}

// New mounts services plus health and reflection, behind the protections
// of opts. gRPC health answers from checker (nil: every mounted service
// SERVING), and NOT_SERVING for everything once Shutdown began.
func New(logger *slog.Logger, checker grpchealth.Checker, opts Options, services ...Service) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	names := make([]string, 0, len(services))
	mux := http.NewServeMux()
	for _, svc := range services {
		names = append(names, svc.Name)
		mux.Handle(svc.Path, svc.Handler)
	}
	if checker == nil {
		checker = grpchealth.NewStaticChecker(names...)
	}
	srv := &Server{checker: checker}
	mux.Handle(grpchealth.NewHandler(srv))
	reflector := grpcreflect.NewStaticReflector(append(names, grpchealth.HealthV1ServiceName)...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))

	srv.http = &http.Server{
		Handler:           opts.withDefaults().guard(mux),
		IdleTimeout:       2 * time.Minute,
		Protocols:         protocols(opts.TLS != nil),
		TLSConfig:         opts.TLS.Clone(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return srv
}

// protocols are HTTP/1.1 and HTTP/2: over TLS, else unencrypted (h2c).
func protocols(tls bool) *http.Protocols {
	p := new(http.Protocols)
	p.SetHTTP1(true)
	if tls {
		p.SetHTTP2(true)
	} else {
		p.SetUnencryptedHTTP2(true)
	}
	return p
}

// Check answers gRPC health: NOT_SERVING once Shutdown began, else the
// checker's answer.
func (s *Server) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if s.stopping.Load() {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return s.checker.Check(ctx, req)
}

// Serve accepts connections on ln until Shutdown, over TLS when
// Options.TLS is set. It returns nil after a clean Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	serve := s.http.Serve
	if s.http.TLSConfig != nil {
		serve = func(ln net.Listener) error { return s.http.ServeTLS(ln, "", "") }
	}
	if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("rpcserver: serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown reports NOT_SERVING, stops accepting connections and waits for
// in-flight calls up to ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	if err := s.http.Shutdown(ctx); err != nil {
		return fmt.Errorf("rpcserver: shutdown: %w", err)
	}
	return nil
}
