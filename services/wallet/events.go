package wallet

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// Journal headers carrying what BalanceChanged has no field for; the state
// is rebuilt from the payload plus these.
const (
	headerHoldReason = "Tradex-Wallet-Hold-Reason"
	headerReleaseID  = "Tradex-Wallet-Release-Id"
	headerInstrument = "Tradex-Wallet-Instrument"
)

var reasonToProto = map[Reason]walletv1.BalanceChangeReason{
	ReasonDeposit:    walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_DEPOSIT,
	ReasonWithdrawal: walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_WITHDRAWAL,
	ReasonHold:       walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_HOLD,
	ReasonRelease:    walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_RELEASE,
	ReasonSettlement: walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_TRADE_SETTLEMENT,
	ReasonFee:        walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_FEE,
	ReasonMargin:     walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_MARGIN,
	ReasonInsurance:  walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_INSURANCE,
	ReasonPosition:   walletv1.BalanceChangeReason_BALANCE_CHANGE_REASON_POSITION,
}

// entryProto converts a journal entry to its payload.
func entryProto(e Entry, scale int32) *walletv1.BalanceChanged {
	var pos *walletv1.PositionState
	if p := e.Position; p != nil {
		pos = &walletv1.PositionState{InstrumentId: p.Instrument, Size: p.Size,
			EntryValue: decimal.Format(p.Value, scale), Margin: decimal.Format(p.Margin, scale)}
	}
	return &walletv1.BalanceChanged{
		Position:       pos,
		EventId:        e.EventID,
		AccountId:      e.Account,
		Asset:          e.Asset,
		Available:      decimal.Format(e.Available, scale),
		Held:           decimal.Format(e.Held, scale),
		AvailableDelta: decimal.Format(e.AvailableDelta, scale),
		HeldDelta:      decimal.Format(e.HeldDelta, scale),
		Reason:         reasonToProto[e.Reason],
		HoldId:         e.HoldID,
		OrderId:        e.OrderID,
		TradeId:        e.TradeID,
		EngineEventId:  e.EngineEventID,
		EngineSequence: e.EngineSequence,
		TransferId:     e.TransferID,
		OccurredAt:     timestamppb.New(e.Time),
		Sequence:       e.Sequence,
		Memo:           e.Memo,
	}
}

// entryRecord is the journal record of e, checked against expected (nil:
// no check, for an account's later entries in one atomic batch).
func entryRecord(e Entry, scale int32, expected *uint64) streams.Record {
	opts := []streams.PublishOption{
		// Unique per account position: a retried write of the same entry is
		// stored once; a different write at that position cannot collide.
		streams.WithMsgID(e.EventID + "@" + e.Account + "@" + strconv.FormatUint(e.Sequence, 10)),
		// The id names the account position: a duplicate there may be
		// another write (a clustered stream checks the id first), so it is
		// a conflict to re-read, never a success.
		streams.WithDuplicateAsConflict(),
	}
	if expected != nil {
		opts = append(opts, streams.WithExpectedLastSubjectSequence(*expected))
	}
	if e.HoldReason != 0 {
		opts = append(opts, streams.WithHeader(headerHoldReason, strconv.Itoa(int(e.HoldReason))))
	}
	if e.ReleaseID != "" {
		opts = append(opts, streams.WithHeader(headerReleaseID, e.ReleaseID))
	}
	if e.Instrument != "" {
		opts = append(opts, streams.WithHeader(headerInstrument, e.Instrument))
	}
	return streams.Record{Topic: streams.TopicBalanceChanged, Key: e.Account, Msg: entryProto(e, scale), Opts: opts}
}

// header reads a message header by name (streams.Stored's Header).
type header interface{ Get(key string) string }

// decodeEntry reads a journal message back into an entry.
func decodeEntry(data []byte, h header, streamSeq uint64, scaleOf func(string) int32) (Entry, error) {
	var m walletv1.BalanceChanged
	if err := proto.Unmarshal(data, &m); err != nil {
		return Entry{}, fmt.Errorf("%w: entry %d: %w", ErrCorruptJournal, streamSeq, err)
	}
	sc := scaleOf(m.GetAsset())
	var vals [4]int64
	for i, s := range []string{m.GetAvailable(), m.GetHeld(), m.GetAvailableDelta(), m.GetHeldDelta()} {
		v, err := decimal.Parse(s, sc)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: entry %d: %w", ErrCorruptJournal, streamSeq, err)
		}
		vals[i] = v
	}
	var reason Reason
	for r, p := range reasonToProto {
		if p == m.GetReason() {
			reason = r
		}
	}
	var pos *PositionState
	if p := m.GetPosition(); p != nil {
		ps, err := positionState(p, sc)
		if err != nil {
			return Entry{}, fmt.Errorf("%w: entry %d: %w", ErrCorruptJournal, streamSeq, err)
		}
		pos = &ps
	}
	hr, _ := strconv.Atoi(h.Get(headerHoldReason))
	return Entry{
		Position: pos,
		EventID:  m.GetEventId(), Account: m.GetAccountId(), Asset: m.GetAsset(),
		Available: vals[0], Held: vals[1], AvailableDelta: vals[2], HeldDelta: vals[3],
		Reason: reason, HoldID: m.GetHoldId(), HoldReason: HoldReason(hr), ReleaseID: h.Get(headerReleaseID),
		OrderID: m.GetOrderId(), TradeID: m.GetTradeId(), EngineEventID: m.GetEngineEventId(),
		EngineSequence: m.GetEngineSequence(), Instrument: h.Get(headerInstrument),
		TransferID: m.GetTransferId(), Memo: m.GetMemo(), Time: m.GetOccurredAt().AsTime(),
		Sequence: m.GetSequence(), StreamSeq: streamSeq,
	}, nil
}

// positionState reads a journal entry's position at the asset's scale.
func positionState(p *walletv1.PositionState, scale int32) (PositionState, error) {
	value, err := decimal.Parse(p.GetEntryValue(), scale)
	if err != nil {
		return PositionState{}, fmt.Errorf("position entry value: %w", err)
	}
	margin, err := decimal.Parse(p.GetMargin(), scale)
	if err != nil {
		return PositionState{}, fmt.Errorf("position margin: %w", err)
	}
	return PositionState{Instrument: p.GetInstrumentId(), Size: p.GetSize(), Value: value, Margin: margin}, nil
}
