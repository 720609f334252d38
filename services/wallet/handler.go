package wallet

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/paging"
	"github.com/tradex-mesh/tradex/streams"
)

// handler implements walletv1connect.WalletServiceHandler: proto <-> domain.
type handler struct{ s *Service }

// Paging of ListBalances: the list's name in its page tokens, and the
// largest offset a token may carry (offset plus a page stays an int).
const (
	balancesList     = "wallet.balances"
	holdsList        = "wallet.holds"
	maxBalanceOffset = math.MaxInt32 - paging.MaxSize
)

// GetBalance returns one balance (zero if never held).
func (h *handler) GetBalance(ctx context.Context, req *walletv1.GetBalanceRequest) (*walletv1.GetBalanceResponse, error) {
	if err := h.check(idField("account_id", req.GetAccountId()), idField("asset", req.GetAsset())); err != nil {
		return nil, h.fail(ctx, err)
	}
	var bal Balance
	h.s.st.read(func(b *Book) { bal = b.Balance(req.GetAccountId(), req.GetAsset()) })
	return &walletv1.GetBalanceResponse{Balance: h.balance(bal)}, nil
}

// ListBalances returns a page of balances ordered by account then asset.
func (h *handler) ListBalances(ctx context.Context, req *walletv1.ListBalancesRequest) (*walletv1.ListBalancesResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	if req.GetAccountId() != "" {
		if err := idField("account_id", req.GetAccountId()); err != nil {
			return nil, h.fail(ctx, err)
		}
	}
	size, offset, err := paging.ReadOffset(req.GetPage(), balancesList, maxBalanceOffset)
	if err != nil {
		return nil, h.fail(ctx, invalid(paging.Field(err), err.Error()))
	}
	var all []Balance
	h.s.st.read(func(b *Book) { all = b.Balances(req.GetAccountId()) })
	all = slices.DeleteFunc(all, func(b Balance) bool {
		return (len(req.GetAssets()) > 0 && !slices.Contains(req.GetAssets(), b.Asset)) ||
			(!req.GetIncludeZero() && b.Available == 0 && b.Held == 0)
	})
	balances, page := pageOf(all, balancesList, offset, size, h.balance)
	return &walletv1.ListBalancesResponse{Balances: balances, Page: page}, nil
}

// pageOf converts the page of all that starts at offset, at most size
// items, and says where the next one starts (of the list named list).
func pageOf[T, P any](all []T, list string, offset, size int, conv func(T) P) ([]P, *commonv1.PageResponse) {
	var out []P
	for i := offset; i < len(all) && i < offset+size; i++ {
		out = append(out, conv(all[i]))
	}
	page := &commonv1.PageResponse{}
	if offset+size < len(all) {
		page.NextPageToken = paging.OffsetToken(list, offset+size)
	}
	return out, page
}

// ListHolds returns a page of the open holds, oldest first.
func (h *handler) ListHolds(ctx context.Context, req *walletv1.ListHoldsRequest) (*walletv1.ListHoldsResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	if req.GetAccountId() != "" {
		if err := idField("account_id", req.GetAccountId()); err != nil {
			return nil, h.fail(ctx, err)
		}
	}
	var reason HoldReason // 0: any
	if req.GetReason() != walletv1.HoldReason_HOLD_REASON_UNSPECIFIED {
		var ok bool
		if reason, ok = holdReasons[req.GetReason()]; !ok {
			return nil, h.fail(ctx, invalid("reason", "unknown hold reason"))
		}
	}
	size, offset, err := paging.ReadOffset(req.GetPage(), holdsList, maxBalanceOffset)
	if err != nil {
		return nil, h.fail(ctx, invalid(paging.Field(err), err.Error()))
	}
	var before time.Time
	if req.GetCreatedBefore() != nil {
		before = req.GetCreatedBefore().AsTime()
	}
	var open []Hold
	h.s.st.read(func(b *Book) { open = b.OpenHolds(req.GetAccountId(), reason, before) })
	holds, page := pageOf(open, holdsList, offset, size, h.hold)
	return &walletv1.ListHoldsResponse{Holds: holds, Page: page}, nil
}

// Deposit credits an account, idempotent on transfer_id.
func (h *handler) Deposit(ctx context.Context, req *walletv1.DepositRequest) (*walletv1.DepositResponse, error) {
	bal, replayed, err := h.transfer(ctx, false, req.GetTransferId(), req.GetAccountId(), req.GetAsset(), req.GetAmount(), req.GetMemo())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &walletv1.DepositResponse{Balance: h.balance(bal), Replayed: replayed}, nil
}

// Withdraw debits an account, idempotent on transfer_id.
func (h *handler) Withdraw(ctx context.Context, req *walletv1.WithdrawRequest) (*walletv1.WithdrawResponse, error) {
	bal, replayed, err := h.transfer(ctx, true, req.GetTransferId(), req.GetAccountId(), req.GetAsset(), req.GetAmount(), req.GetMemo())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &walletv1.WithdrawResponse{Balance: h.balance(bal), Replayed: replayed}, nil
}

func (h *handler) transfer(ctx context.Context, out bool, id, acct, asset, amountText, memo string) (Balance, bool, error) {
	if err := h.check(idField("transfer_id", id), accountField("account_id", acct), assetField("asset", asset), memoField("memo", memo)); err != nil {
		return Balance{}, false, err
	}
	amount, err := h.amount("amount", amountText, asset)
	if err != nil {
		return Balance{}, false, err
	}
	locks := []string{acct}
	if !out {
		if err := h.tradedAsset(ctx, asset); err != nil {
			return Balance{}, false, err
		}
		locks = append(locks, supplyLock(asset)) // deposits of one asset plan one at a time: see Tx.Deposit
	}
	var (
		bal      Balance
		replayed bool
	)
	err = h.s.st.update(ctx, locks, func(tx *Tx) error {
		if t, ok := tx.book.Transfer(acct, id); ok {
			if t.Withdrawal != out || t.Asset != asset || t.Amount != amount || t.Memo != memo {
				return fmt.Errorf("%w: transfer_id %s was used for another transfer", ErrAlreadyExists, id)
			}
			replayed = true
			return nil
		}
		if out {
			return tx.Withdraw(id, acct, asset, amount, memo)
		}
		return tx.Deposit(id, acct, asset, amount, memo)
	}, func(b *Book) {
		t, _ := b.Transfer(acct, id)
		bal = t.Balance
	})
	return bal, replayed, err
}

// supplyLock is the lock name of an asset's supply (account ids are
// identifiers: none starts with '#').
func supplyLock(asset string) string { return "#supply/" + asset }

// tradedAsset checks that some instrument trades asset: a deposit of
// anything else could never be used, nor told from a typo.
func (h *handler) tradedAsset(ctx context.Context, asset string) error {
	ok, err := h.s.insts.Trades(ctx, asset)
	switch {
	case err != nil:
		return fmt.Errorf("look up the instruments trading %s: %w", asset, err)
	case !ok:
		return invalid("asset", fmt.Sprintf("no instrument trades %s", asset))
	}
	return nil
}

var holdReasons = map[walletv1.HoldReason]HoldReason{
	walletv1.HoldReason_HOLD_REASON_ORDER:      HoldOrder,
	walletv1.HoldReason_HOLD_REASON_WITHDRAWAL: HoldWithdrawal,
	walletv1.HoldReason_HOLD_REASON_ADMIN:      HoldAdmin,
}

// HoldBalance reserves funds, idempotent on hold_id.
func (h *handler) HoldBalance(ctx context.Context, req *walletv1.HoldBalanceRequest) (*walletv1.HoldBalanceResponse, error) {
	id, acct, asset := req.GetHoldId(), req.GetAccountId(), req.GetAsset()
	if err := h.check(idField("hold_id", id), idField("account_id", acct), idField("asset", asset)); err != nil {
		return nil, h.fail(ctx, err)
	}
	reason, ok := holdReasons[req.GetReason()]
	if !ok {
		return nil, h.fail(ctx, invalid("reason", "must be set"))
	}
	amount, err := h.amount("amount", req.GetAmount(), asset)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	var (
		hold     Hold
		replayed bool
	)
	err = h.s.st.update(ctx, []string{acct}, func(tx *Tx) error {
		if old, ok := tx.book.Hold(acct, id); ok {
			if old.Asset != asset || old.Amount != amount || old.Reason != reason {
				return fmt.Errorf("%w: hold_id %s was used for another hold", ErrAlreadyExists, id)
			}
			replayed = true
			return nil
		}
		return tx.Hold(id, acct, asset, amount, reason)
	}, func(b *Book) { hold, _ = b.Hold(acct, id) })
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &walletv1.HoldBalanceResponse{Hold: h.hold(hold), Balance: h.balance(hold.Balance), Replayed: replayed}, nil
}

// ReleaseHold frees all or part of a hold, idempotent on release_id (a
// partial release) or by itself (a full release).
func (h *handler) ReleaseHold(ctx context.Context, req *walletv1.ReleaseHoldRequest) (*walletv1.ReleaseHoldResponse, error) {
	id, acct, relID := req.GetHoldId(), req.GetAccountId(), req.GetReleaseId()
	if err := h.check(idField("hold_id", id), idField("account_id", acct)); err != nil {
		return nil, h.fail(ctx, err)
	}
	partial := req.Amount != nil
	if partial {
		if err := idField("release_id", relID); err != nil {
			return nil, h.fail(ctx, err)
		}
	}
	var (
		hold     Hold
		bal      Balance
		replayed bool
	)
	err := h.s.st.update(ctx, []string{acct}, func(tx *Tx) error {
		old, ok := tx.book.Hold(acct, id)
		if !ok {
			return fmt.Errorf("%w: %s", ErrHoldNotFound, id)
		}
		if !partial {
			n, err := tx.Release(acct, id, -1, Entry{EventID: "release-" + id + "-all"})
			replayed = n == 0
			return err
		}
		amount, err := h.amount("amount", req.GetAmount(), old.Asset)
		if err != nil {
			return err
		}
		if r, ok := tx.book.Release(acct, id, relID); ok {
			if r.Amount != amount {
				return fmt.Errorf("%w: release_id %s was used for another amount", ErrAlreadyExists, relID)
			}
			replayed = true
			return nil
		}
		_, err = tx.Release(acct, id, amount, Entry{EventID: "release-" + id + "-" + relID, ReleaseID: relID})
		return err
	}, func(b *Book) {
		hold, _ = b.Hold(acct, id)
		bal = b.Balance(acct, hold.Asset)
		if r, ok := b.Release(acct, id, relID); ok && partial && replayed {
			bal = r.Balance
		}
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &walletv1.ReleaseHoldResponse{Hold: h.hold(hold), Balance: h.balance(bal), Replayed: replayed}, nil
}

// WatchBalances sends the current balances, a snapshot end, then every
// journal entry of the watched account(s) until the client goes away.
func (h *handler) WatchBalances(ctx context.Context, req *walletv1.WatchBalancesRequest, stream *connect.ServerStream[walletv1.WatchBalancesResponse]) error {
	acct, assets := req.GetAccountId(), req.GetAssets()
	if acct != "" {
		if err := idField("account_id", acct); err != nil {
			return h.fail(ctx, err)
		}
	}
	if err := h.s.checkReady(); err != nil {
		return h.fail(ctx, err)
	}
	bals, pos, err := h.s.st.current(ctx, acct)
	if err != nil {
		return h.fail(ctx, err)
	}
	want := func(asset string) bool { return len(assets) == 0 || slices.Contains(assets, asset) }
	for _, b := range bals {
		if !want(b.Asset) {
			continue
		}
		if err := stream.Send(&walletv1.WatchBalancesResponse{Event: &walletv1.WatchBalancesResponse_Current{Current: h.balance(b)}}); err != nil {
			return err
		}
	}
	if err := stream.Send(&walletv1.WatchBalancesResponse{Event: &walletv1.WatchBalancesResponse_SnapshotEnd{
		SnapshotEnd: &commonv1.SnapshotEnd{Sequence: pos}}}); err != nil {
		return err
	}
	return h.followJournal(ctx, acct, pos, func(bc *walletv1.BalanceChanged, _ streams.Stored) error {
		if !want(bc.GetAsset()) {
			return nil
		}
		return stream.Send(&walletv1.WatchBalancesResponse{Event: &walletv1.WatchBalancesResponse_Changed{Changed: bc}})
	})
}

// followJournal passes every journal entry of acct ("" for all) after
// stream sequence pos to send until the client goes away. send's errors
// are the client's going away, returned as they are, or else (wrapping
// ErrCorruptJournal) the journal's.
func (h *handler) followJournal(ctx context.Context, acct string, pos uint64, send func(*walletv1.BalanceChanged, streams.Stored) error) error {
	var sendErr error
	err := h.s.streams.Follow(ctx, streams.Follow{Topic: streams.TopicBalanceChanged, Key: acct, From: pos + 1},
		func(_ context.Context, m streams.Stored) error {
			var bc walletv1.BalanceChanged
			if err := proto.Unmarshal(m.Data, &bc); err != nil {
				return fmt.Errorf("%w: entry %d: %w", ErrCorruptJournal, m.Sequence, err)
			}
			if err := send(&bc, m); err != nil {
				if errors.Is(err, ErrCorruptJournal) {
					return err
				}
				sendErr = err
				return err
			}
			return nil
		})
	switch {
	case sendErr != nil:
		return sendErr
	case err != nil:
		return h.fail(ctx, fmt.Errorf("watch journal: %w", err))
	default:
		return nil
	}
}

// check returns the first error of errs, or ErrNotReady before Run rebuilt
// the state.
func (h *handler) check(errs ...error) error {
	if err := h.s.checkReady(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// idField checks an id that is also a subject token or part of one.
func idField(field, v string) error {
	if v == "" {
		return invalid(field, "is required")
	}
	if err := streams.ValidateKey(v); err != nil {
		return invalid(field, "must be printable ASCII without '.', '*', '>' or spaces, at most 128 bytes")
	}
	return nil
}

// Bounds of a transfer's fields.
const (
	maxAccountID = 64
	maxAsset     = 16
	maxMemo      = 256
)

// accountField checks an account id: letters, digits, '-' and '_', 1 to
// 64 of them (what a credential can name: an account that cannot exist is
// never credited).
func accountField(field, v string) error {
	if v == "" || len(v) > maxAccountID || strings.IndexFunc(v, func(r rune) bool {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_'
		return !ok
	}) >= 0 {
		return invalid(field, fmt.Sprintf("must be 1 to %d ASCII letters, digits, '-' or '_'", maxAccountID))
	}
	return nil
}

// assetField checks an asset code: 1 to 16 upper-case ASCII letters and
// digits ("USDT").
func assetField(field, v string) error {
	if v == "" || len(v) > maxAsset || strings.IndexFunc(v, func(r rune) bool {
		ok := r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		return !ok
	}) >= 0 {
		return invalid(field, fmt.Sprintf("must be 1 to %d upper-case letters or digits", maxAsset))
	}
	return nil
}

// memoField checks a transfer's memo: at most 256 bytes of printable
// UTF-8.
func memoField(field, v string) error {
	if len(v) > maxMemo {
		return invalid(field, fmt.Sprintf("must be at most %d bytes", maxMemo))
	}
	if !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return invalid(field, "must be printable UTF-8")
	}
	return nil
}

// amount parses a positive amount at the asset's scale.
func (h *handler) amount(field, text, asset string) (int64, error) {
	v, err := decimal.ParseNonNegative(text, h.s.cfg.scale(asset))
	if err != nil {
		return 0, invalid(field, err.Error())
	}
	if v == 0 {
		return 0, invalid(field, "must be positive")
	}
	return v, nil
}

func (h *handler) fail(ctx context.Context, err error) error {
	return errorMap.ToConnect(ctx, h.s.log, err)
}

func (h *handler) balance(b Balance) *walletv1.Balance {
	sc := h.s.cfg.scale(b.Asset)
	out := &walletv1.Balance{
		AccountId: b.Account, Asset: b.Asset,
		Available: decimal.Format(b.Available, sc), Held: decimal.Format(b.Held, sc),
		Total: decimal.Format(b.Available+b.Held, sc), Revision: b.Revision,
	}
	if !b.UpdatedAt.IsZero() {
		out.UpdatedAt = timestamppb.New(b.UpdatedAt)
	}
	return out
}

func (h *handler) hold(x Hold) *walletv1.Hold {
	sc := h.s.cfg.scale(x.Asset)
	var reason walletv1.HoldReason
	for p, r := range holdReasons {
		if r == x.Reason {
			reason = p
		}
	}
	return &walletv1.Hold{
		HoldId: x.ID, AccountId: x.Account, Asset: x.Asset,
		Amount: decimal.Format(x.Amount, sc), Remaining: decimal.Format(x.Remaining, sc),
		Reason: reason, CreatedAt: timestamppb.New(x.CreatedAt), UpdatedAt: timestamppb.New(x.UpdatedAt),
	}
}
