package order

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// An order's record follows from the engine's events, a moment after
// PlaceOrder answered; until then another instance (or this one after a
// restart) knows the order only by its submit command on engine.order.v1.
const (
	// unrecordedFor is how old an order may be and still lack its record;
	// an older order without one is not found.
	unrecordedFor = 10 * time.Minute
	// unrecordedScan bounds the commands read to find a submit, so that a
	// made-up order id costs little.
	unrecordedScan = 4096
	// clockSlack is how much the order service's clock (in the id) and the
	// broker's (on the stream) may differ.
	clockSlack = 10 * time.Second
)

// unrecorded returns the order id from its submit command, when PlaceOrder
// stored one and the order has no record yet: a working order, as the
// engine has it or is about to. instrument narrows the search (the client
// order id's claim names it); empty searches every instrument. It returns
// ErrOrderNotFound when there is no such command, and an error wrapping
// streams.ErrUnavailable and streams.ErrScanLimit when too many commands
// came after it to tell (the record is then due any moment: try again).
func (s *Service) unrecorded(ctx context.Context, id, instrument string) (Order, error) {
	notFound := fmt.Errorf("%w: %s", ErrOrderNotFound, id)
	created, ok := idTime(id)
	if !ok || s.now().Sub(created) > unrecordedFor {
		return Order{}, notFound
	}
	m, err := s.mesh.MsgByID(ctx, streams.TopicOrderCommand, instrument, id, created.Add(-clockSlack), unrecordedScan)
	switch {
	case errors.Is(err, streams.ErrNotFound):
		return Order{}, notFound
	case errors.Is(err, streams.ErrScanLimit):
		return Order{}, fmt.Errorf("%w: order %s is not recorded yet: %w", streams.ErrUnavailable, id, err)
	case err != nil:
		return Order{}, fmt.Errorf("look up the submit of order %s: %w", id, err)
	}
	cmd := &enginev1.OrderCommand{}
	if err := proto.Unmarshal(m.Data, cmd); err != nil || cmd.GetSubmit().GetOrderId() != id {
		return Order{}, fmt.Errorf("submit command of order %s (stream sequence %d) does not decode: %w", id, m.Sequence, errors.Join(err, errors.New("not a submit of this order")))
	}
	o, err := fromSubmit(cmd, m.Header.Get(HeaderClientOrderID))
	if err != nil {
		return Order{}, fmt.Errorf("stream sequence %d: %w", m.Sequence, err)
	}
	return o, nil
}

// idTime is the creation time an order id starts with (id.go).
func idTime(id string) (time.Time, bool) {
	if len(id) < 16 {
		return time.Time{}, false
	}
	ns, err := strconv.ParseUint(id[:16], 16, 64)
	if err != nil || ns > 1<<63-1 {
		return time.Time{}, false
	}
	return time.Unix(0, int64(ns)), true
}
