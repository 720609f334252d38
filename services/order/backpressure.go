package order

import (
	"context"
	"fmt"
	"time"
)

// watchBacklog reads settlement's backlog every Config.BacklogEvery until
// ctx ends. A failed read keeps the last value: the broker being away
// shows elsewhere (PlaceOrder's own writes fail).
func (s *Service) watchBacklog(ctx context.Context) {
	tick := time.NewTicker(s.cfg.BacklogEvery)
	defer tick.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, s.cfg.BacklogEvery*5)
		if n, err := s.backlogOf(rctx); err == nil {
			s.backlog.Store(n)
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// admit refuses a new order while settlement is further behind than
// Config.MaxBacklog.
func (s *Service) admit() error {
	if s.cfg.MaxBacklog == 0 || s.backlogOf == nil {
		return nil
	}
	if n := s.backlog.Load(); n > s.cfg.MaxBacklog {
		return fmt.Errorf("%w: %d messages not settled yet (limit %d): retry in %ss", ErrBusy, n, s.cfg.MaxBacklog, retryAfter)
	}
	return nil
}
