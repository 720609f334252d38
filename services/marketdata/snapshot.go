package marketdata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/services/marketdata/market"
	"github.com/tradex-mesh/tradex/streams"
)

// snapshotName is the object holding the state snapshot.
const snapshotName = "state"

// snapshotVersion is the format of a snapshot; another is ignored (the
// state is then rebuilt from the first event). 2 has perpetuals and their
// mark prices.
const snapshotVersion = 2

// snapshotDoc is every instrument's state at one position of
// engine.event.v1: the start reads the events after Stream.
type snapshotDoc struct {
	Version     int              `json:"version"`
	Stream      uint64           `json:"stream"`
	Instruments []snapInstrument `json:"instruments"`
}

type snapInstrument struct {
	Symbol        string `json:"symbol"`
	PriceScale    int32  `json:"price_scale"`
	QuantityScale int32  `json:"quantity_scale"`
	Perpetual     bool   `json:"perpetual,omitempty"`
	// Mark is a perpetual's last mark price.
	Mark  *snapMark    `json:"mark,omitempty"`
	State market.State `json:"state"`
}

// snapMark is a mark price in a snapshot.
type snapMark struct {
	Price string    `json:"price"`
	Seq   uint64    `json:"seq"`
	Time  time.Time `json:"time"`
}

// snapMarkOf is m for a snapshot; nil for nil.
func snapMarkOf(m *marketdatav1.MarkPrice) *snapMark {
	if m == nil {
		return nil
	}
	return &snapMark{Price: m.GetMarkPrice(), Seq: m.GetSeq(), Time: m.GetTime().AsTime()}
}

// markPrice is sm of instrument sym; nil for nil.
func (sm *snapMark) markPrice(sym string) *marketdatav1.MarkPrice {
	if sm == nil {
		return nil
	}
	return &marketdatav1.MarkPrice{InstrumentId: sym, MarkPrice: sm.Price, Seq: sm.Seq, Time: timestamppb.New(sm.Time)}
}

// snapshotStore keeps the snapshot; *streams.Objects is one.
type snapshotStore interface {
	Get(ctx context.Context, object string) ([]byte, error)
	Put(ctx context.Context, object string, data []byte) error
}

// snapshots opens the snapshot store (nil when snapshots are off).
func (s *Service) snapshots(ctx context.Context) (snapshotStore, error) {
	if s.cfg.SnapshotEvery == 0 {
		return nil, nil
	}
	store, err := s.mesh.Objects(ctx, s.cfg.SnapshotBucket)
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	return store, nil
}

// loadSnapshot restores the stored state and returns the stream position
// it covers (0 without a usable snapshot: replay everything).
func (s *Service) loadSnapshot(ctx context.Context, store snapshotStore) (uint64, error) {
	if store == nil {
		return 0, nil
	}
	data, err := store.Get(ctx, snapshotName)
	if errors.Is(err, streams.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read snapshot: %w", err)
	}
	var doc snapshotDoc
	if err := json.Unmarshal(data, &doc); err != nil || doc.Version != snapshotVersion {
		s.log.WarnContext(ctx, "market data snapshot ignored, replaying the engine stream", "err", err, "version", doc.Version)
		return 0, nil
	}
	if err := s.st.restore(s.cfg.Market, doc); err != nil {
		s.st.reset()
		s.log.WarnContext(ctx, "market data snapshot ignored, replaying the engine stream", "err", err)
		return 0, nil
	}
	s.log.InfoContext(ctx, "market data snapshot loaded", "stream_sequence", doc.Stream, "instruments", len(doc.Instruments))
	return doc.Stream, nil
}

// writeSnapshot stores doc; it runs beside the feed, one at a time.
func (s *Service) writeSnapshot(ctx context.Context, store snapshotStore, doc snapshotDoc) error {
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	if err := store.Put(ctx, snapshotName, data); err != nil {
		return fmt.Errorf("store snapshot: %w", err)
	}
	return nil
}
