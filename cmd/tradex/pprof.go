package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"
)

// checkPprofAddr accepts "" (off) or a loopback host:port: profiles show
// the process's internals and cost CPU to take, so they are never exposed.
func checkPprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	if err := checkAddr(addr); err != nil {
		return err
	}
	host, _, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: profiles are served on a loopback address only (127.0.0.1, ::1 or localhost)", addr)
	}
	return nil
}

// listenPprof binds --pprof-addr ("": nil, off).
func listenPprof(ctx context.Context, addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-addr: %w", err)
	}
	return ln, nil
}

// servePprof serves Go's runtime profiles (/debug/pprof/) on ln until ctx
// ends, to callers with the internal port's token (Authorization: Bearer).
// Nothing else is on that listener.
func servePprof(ctx context.Context, logger *slog.Logger, ln net.Listener, token string) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: requireToken(token, mux), ReadHeaderTimeout: 5 * time.Second}
	logger.InfoContext(ctx, "serving runtime profiles", "addr", ln.Addr().String(), "path", "/debug/pprof/")
	go func() {
		<-ctx.Done()
		_ = srv.Close() // profiles in flight are cut short: nothing to keep
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("pprof: %w", err)
	}
	return nil
}

// requireToken answers 401 to a request without "Authorization: Bearer
// <token>".
func requireToken(token string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			http.Error(w, "profiles need the internal token: Authorization: Bearer <data-dir>/internal-token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
