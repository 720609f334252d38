package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// catchUp runs, before the first delivered message of a key, the messages
// of that key the handler has not applied yet (ConsumerConfig.Resume), up
// to the message and at least up to the consumer's delivery horizon at
// start: every message an earlier instance may have left unacknowledged.
// Their redeliveries, which may come at any time and in any order with new
// messages, then find them applied. Messages past the horizon reach this
// instance in stream order. It retries in place until it is done; false
// means the consumer is stopping.
func (p *processor[T]) catchUp(ctx context.Context, raw jetstream.Msg, m *Message[T]) bool {
	if p.cfg.Resume == nil || p.isCaughtUp(m.Subject) {
		return true
	}
	stop := p.keepInProgress(raw) // the delivered message waits while the gap is replayed
	defer stop()
	for attempt := 0; ; attempt++ {
		err := p.replayGap(ctx, m, attempt)
		if err == nil {
			p.mu.Lock()
			p.caughtUp[m.Subject] = true
			p.mu.Unlock()
			return true
		}
		p.cfg.Logger.WarnContext(ctx, "catch-up failed", "consumer", p.cfg.Name, "subject", m.Subject, "seq", m.Sequence, "err", err)
		if !p.waitInPlace(ctx, raw, backoff(attempt, p.cfg.BackoffBase, p.cfg.BackoffMax)) {
			return false
		}
	}
}

func (p *processor[T]) isCaughtUp(subject string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.caughtUp[subject]
}

// keepInProgress tells the broker every AckWait/3 that raw is still being
// worked on, until the returned function is called.
func (p *processor[T]) keepInProgress(raw jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(max(p.cfg.AckWait/3, time.Millisecond))
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				_ = raw.InProgress() // a lost one only risks an early redelivery
			}
		}
	}()
	return func() { close(done) }
}

// replayGap hands the handler, in order, every message of m's subject
// after the last one it applied (and after the consumer's ack floor at
// start: everything below it was handled), before m and up to the horizon.
// A message that fails for good, or for the MaxDeliver-th attempt, is
// dead-lettered, as its delivery would be.
func (p *processor[T]) replayGap(ctx context.Context, m *Message[T], attempt int) error {
	applied, err := p.cfg.Resume(ctx, m.Key)
	if err != nil {
		return fmt.Errorf("resume %s: %w", m.Key, err)
	}
	applied = max(applied, p.ackFloor)
	last := max(m.Sequence-1, p.horizon)
	if applied >= last {
		return nil
	}
	stream, err := p.js.Stream(ctx, p.topic.Stream())
	if err != nil {
		return brokerError("stream "+p.topic.Stream(), err)
	}
	for seq := applied + 1; seq <= last; {
		msg, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(m.Subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return brokerError(fmt.Sprintf("read %s after %d", m.Subject, seq), err)
		}
		if msg.Sequence > last {
			return nil
		}
		seq = msg.Sequence + 1
		gap, err := p.decodeData(msg.Subject, msg.Header, msg.Data)
		if err == nil {
			gap.Sequence, gap.Delivery, gap.Time = msg.Sequence, 1, msg.Time
			err = p.call(extractContext(ctx, gap.Header), gap)
		}
		var permanent permanentError
		switch {
		case err == nil:
		case errors.As(err, &permanent) || attempt+1 >= p.cfg.MaxDeliver:
			if err := p.writeDeadLetter(ctx, msg.Subject, msg.Data, msg.Header, msg.Sequence, attempt+1, err); err != nil {
				return err
			}
		default:
			return fmt.Errorf("catch up %s at %d: %w", m.Subject, msg.Sequence, err)
		}
	}
	return nil
}
