package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
)

// checkAddrFree fails with ErrAddrInUse when something already listens on
// host:port. nats-server itself would only log a fatal error and never
// become ready. A port of 0 or less (random, no listener) is always free.
func checkAddrFree(ctx context.Context, kind, host string, port int) error {
	if port <= 0 {
		return nil
	}
	addr := hostPort(host, port)
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%s address %s: %w", kind, addr, ErrAddrInUse)
	}
	if err != nil {
		return fmt.Errorf("%s address %s: %w", kind, addr, err)
	}
	if err := l.Close(); err != nil {
		return fmt.Errorf("%s address %s: release probe: %w", kind, addr, err)
	}
	return nil
}

// freePorts returns n distinct free TCP ports on host. All n listeners are
// held open until every port is picked so the ports differ; another process
// may still take one after they are released (callers retry on
// ErrAddrInUse).
func freePorts(ctx context.Context, host string, n int) (ports []int, err error) {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			err = errors.Join(err, l.Close())
		}
	}()
	var lc net.ListenConfig
	for range n {
		l, err := lc.Listen(ctx, "tcp", hostPort(host, 0))
		if err != nil {
			return nil, fmt.Errorf("pick a free port on %s: %w", host, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
