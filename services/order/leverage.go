package order

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/streams"
)

// An account's leverage on a perpetual is kept in the bucket under
// "l.<account>.<instrument>" (JSON); until it is set, defaultLeverage (or
// the instrument's maximum if lower) applies.
const (
	leveragePrefix  = "l."
	defaultLeverage = 10
)

// leverage is an account's leverage on a perpetual.
type leverage struct {
	Account    string    `json:"account"`
	Instrument string    `json:"instrument"`
	Leverage   int32     `json:"leverage"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func leverageKey(account, instrument string) string {
	return leveragePrefix + keyToken(account) + "." + keyToken(instrument)
}

// SetLeverage sets an account's leverage on a perpetual.
func (h *handler) SetLeverage(ctx context.Context, req *orderv1.SetLeverageRequest) (*orderv1.SetLeverageResponse, error) {
	lv, err := h.s.setLeverage(ctx, req.GetAccountId(), req.GetInstrumentId(), req.GetLeverage())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &orderv1.SetLeverageResponse{Leverage: leverageToProto(lv)}, nil
}

// GetLeverage returns an account's leverage on a perpetual.
func (h *handler) GetLeverage(ctx context.Context, req *orderv1.GetLeverageRequest) (*orderv1.GetLeverageResponse, error) {
	lv, err := h.s.leverage(ctx, req.GetAccountId(), req.GetInstrumentId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &orderv1.GetLeverageResponse{Leverage: leverageToProto(lv)}, nil
}

func leverageToProto(lv leverage) *orderv1.Leverage {
	out := &orderv1.Leverage{AccountId: lv.Account, InstrumentId: lv.Instrument, Leverage: lv.Leverage}
	if !lv.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(lv.UpdatedAt)
	}
	return out
}

// maxLeverage checks account and instrument and returns the perpetual's
// maximum leverage.
func (s *Service) maxLeverage(ctx context.Context, account, instrument string) (int32, error) {
	if err := s.checkReady(); err != nil {
		return 0, err
	}
	if err := checkAccount(account); err != nil {
		return 0, err
	}
	if instrument == "" {
		return 0, invalid("instrument_id", "is required")
	}
	in, err := s.insts.Get(ctx, instrument)
	if errors.Is(err, instruments.ErrNotFound) {
		return 0, fmt.Errorf("%w: %s", ErrInstrumentNotFound, instrument)
	}
	if err != nil {
		return 0, fmt.Errorf("instrument %s: %w", instrument, err)
	}
	if in.GetKind() != commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL || in.GetPerpetual().GetMaxLeverage() < 1 {
		return 0, invalid("instrument_id", instrument+" is not a perpetual with contract rules: only perpetuals have a leverage")
	}
	return in.GetPerpetual().GetMaxLeverage(), nil
}

// setLeverage stores an account's leverage on a perpetual.
func (s *Service) setLeverage(ctx context.Context, account, instrument string, value int32) (leverage, error) {
	most, err := s.maxLeverage(ctx, account, instrument)
	if err != nil {
		return leverage{}, err
	}
	if value < 1 || value > most {
		return leverage{}, invalid("leverage", fmt.Sprintf("must be 1 to %s's max_leverage %d, got %d", instrument, most, value))
	}
	lv := leverage{Account: account, Instrument: instrument, Leverage: value, UpdatedAt: s.now()}
	b, err := json.Marshal(lv)
	if err != nil {
		return leverage{}, fmt.Errorf("encode leverage: %w", err)
	}
	if _, err := s.st.kv.Put(ctx, leverageKey(account, instrument), b); err != nil {
		return leverage{}, fmt.Errorf("%w: store leverage: %w", streams.ErrUnavailable, err)
	}
	return lv, nil
}

// leverage reads an account's leverage on a perpetual, or the default.
func (s *Service) leverage(ctx context.Context, account, instrument string) (leverage, error) {
	most, err := s.maxLeverage(ctx, account, instrument)
	if err != nil {
		return leverage{}, err
	}
	e, err := s.st.kv.Get(ctx, leverageKey(account, instrument))
	if errors.Is(err, streams.ErrNotFound) {
		return leverage{Account: account, Instrument: instrument, Leverage: min(defaultLeverage, most)}, nil
	}
	if err != nil {
		return leverage{}, fmt.Errorf("%w: read leverage: %w", streams.ErrUnavailable, err)
	}
	var lv leverage
	if err := json.Unmarshal(e.Value, &lv); err != nil {
		return leverage{}, fmt.Errorf("leverage record of %s on %s: %w", account, instrument, err)
	}
	lv.Leverage = min(lv.Leverage, most) // the maximum may have come down since
	return lv, nil
}
