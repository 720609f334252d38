package wallet

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// Reason says why a balance changed (the journal's BalanceChangeReason).
type Reason int

// Reasons of a journal entry.
const (
	ReasonDeposit Reason = iota + 1
	ReasonWithdrawal
	ReasonHold
	ReasonRelease
	ReasonSettlement
	// ReasonFee is a trade's fee: paid by its buyer (from the order's hold)
	// or its seller (from what it received), and received by the fee
	// account.
	ReasonFee
	// ReasonMargin moves a perpetual's margin: from an order's hold into the
	// instrument's margin account, or from it to a balance (a payout).
	ReasonMargin
	// ReasonInsurance moves funds between the insurance fund and a margin
	// account: shortfalls paid, funding roundings received.
	ReasonInsurance
	// ReasonPosition moves nothing: the entry records a position's state.
	ReasonPosition
)

// HoldReason says what a hold reserves funds for.
type HoldReason int

// Hold reasons (the contract's HoldReason).
const (
	HoldOrder HoldReason = iota + 1
	HoldWithdrawal
	HoldAdmin
)

// Balance is what an account holds of one asset, in fixed-point units of
// the asset's scale.
type Balance struct {
	Account, Asset  string
	Available, Held int64
	// Revision is the account journal sequence of the last entry that
	// changed the balance; 0 if none did.
	Revision  uint64
	UpdatedAt time.Time
}

// Hold is an amount reserved from an account's available balance.
type Hold struct {
	ID, Account, Asset string
	Amount, Remaining  int64
	Reason             HoldReason
	CreatedAt          time.Time
	UpdatedAt          time.Time
	// Balance is the balance right after the hold was made: the result a
	// repeated HoldBalance returns.
	Balance Balance
}

// Transfer is the idempotency record of a deposit or withdrawal.
type Transfer struct {
	ID, Account, Asset string
	Withdrawal         bool
	Amount             int64
	Memo               string
	// Balance is the balance right after the transfer.
	Balance Balance
}

// Release is the idempotency record of a partial release.
type Release struct {
	ID, HoldID, Account string
	Amount              int64
	Balance             Balance
}

// Entry is one journal entry: the change of one balance of one account.
// Available and Held are the values after the change.
type Entry struct {
	EventID         string
	Account, Asset  string
	Available, Held int64
	AvailableDelta  int64
	HeldDelta       int64
	Reason          Reason
	HoldID          string
	HoldReason      HoldReason // on ReasonHold
	ReleaseID       string     // on a partial ReasonRelease
	OrderID         string
	TradeID         string
	EngineEventID   string
	EngineSequence  uint64
	Instrument      string // of the engine event
	TransferID      string
	Memo            string
	// Position is a ReasonPosition entry's position after the event.
	Position *PositionState
	Time     time.Time
	// Sequence is the account's journal sequence (1, 2, ...); StreamSeq the
	// entry's stream sequence. Both are set when the entry is committed.
	Sequence  uint64
	StreamSeq uint64
}

// account is one account's state.
type account struct {
	seq      uint64 // last journal sequence of the account
	subjSeq  uint64 // stream sequence of its last entry
	balances map[string]*Balance
}

// Book is the wallet's whole state, rebuilt from the journal. It is not safe
// for concurrent use; the service guards it.
type Book struct {
	accounts  map[string]*account
	holds     map[string]*Hold     // account/holdID
	transfers map[string]*Transfer // account/transferID
	releases  map[string]*Release  // account/holdID/releaseID
	engine    map[string]uint64    // instrument -> last applied engine sequence
	supply    map[string]int64     // asset -> available+held over all accounts
	positions map[string]*Position // account/instrument, open ones only
	applied   uint64               // last stream sequence applied by reading the journal in order
}

// NewBook returns an empty book.
func NewBook() *Book {
	return &Book{
		accounts:  map[string]*account{},
		holds:     map[string]*Hold{},
		transfers: map[string]*Transfer{},
		releases:  map[string]*Release{},
		engine:    map[string]uint64{},
		supply:    map[string]int64{},
		positions: map[string]*Position{},
	}
}

func key(parts ...string) string {
	s := parts[0]
	for _, p := range parts[1:] {
		s += "/" + p
	}
	return s
}

// Balance returns the balance of account in asset (zero if never held).
func (b *Book) Balance(acct, asset string) Balance {
	if a, ok := b.accounts[acct]; ok {
		if bal, ok := a.balances[asset]; ok {
			return *bal
		}
	}
	return Balance{Account: acct, Asset: asset}
}

// Balances returns every balance of acct ("" for every account), ordered by
// account then asset.
func (b *Book) Balances(acct string) []Balance {
	var out []Balance
	for id, a := range b.accounts {
		if acct != "" && id != acct {
			continue
		}
		for _, bal := range a.balances {
			out = append(out, *bal)
		}
	}
	slices.SortFunc(out, func(x, y Balance) int {
		return cmp.Or(cmp.Compare(x.Account, y.Account), cmp.Compare(x.Asset, y.Asset))
	})
	return out
}

// Hold returns a hold of an account.
func (b *Book) Hold(acct, id string) (Hold, bool) {
	h, ok := b.holds[key(acct, id)]
	if !ok {
		return Hold{}, false
	}
	return *h, true
}

// OpenHolds returns the holds with something still held, of acct (""
// for every account), of reason (0 for any), made before before (zero for
// any), oldest first, then by account and id.
func (b *Book) OpenHolds(acct string, reason HoldReason, before time.Time) []Hold {
	var out []Hold
	for _, h := range b.holds {
		if h.Remaining > 0 && (acct == "" || h.Account == acct) && (reason == 0 || h.Reason == reason) &&
			(before.IsZero() || h.CreatedAt.Before(before)) {
			out = append(out, *h)
		}
	}
	slices.SortFunc(out, func(x, y Hold) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), cmp.Compare(x.Account, y.Account), cmp.Compare(x.ID, y.ID))
	})
	return out
}

// Transfer returns the record of a transfer of an account.
func (b *Book) Transfer(acct, id string) (Transfer, bool) {
	t, ok := b.transfers[key(acct, id)]
	if !ok {
		return Transfer{}, false
	}
	return *t, true
}

// Release returns the record of a partial release.
func (b *Book) Release(acct, holdID, id string) (Release, bool) {
	r, ok := b.releases[key(acct, holdID, id)]
	if !ok {
		return Release{}, false
	}
	return *r, true
}

// EngineSequence is the last engine event sequence applied for instrument.
func (b *Book) EngineSequence(instrument string) uint64 { return b.engine[instrument] }

// AccountSeq returns the account's last journal sequence and the stream
// sequence of its last entry (the expected last subject sequence).
func (b *Book) AccountSeq(acct string) (seq, subjSeq uint64) {
	if a, ok := b.accounts[acct]; ok {
		return a.seq, a.subjSeq
	}
	return 0, 0
}

// Applied is the last stream sequence read from the journal in order.
func (b *Book) Applied() uint64 { return b.applied }

// Totals sums available+held of every asset over all accounts.
func (b *Book) Totals() map[string]int64 {
	t := map[string]int64{}
	for _, a := range b.accounts {
		for asset, bal := range a.balances {
			t[asset] += bal.Available + bal.Held
		}
	}
	return t
}

// Supply is available+held of asset over all accounts, kept as entries
// apply. Deposits keep it within int64, so that no balance can overflow:
// a trade only moves an asset between accounts, and no account holds
// more than all of them.
func (b *Book) Supply(asset string) int64 { return b.supply[asset] }

// Apply applies a committed entry (with Sequence and StreamSeq set). It is
// the one way the book changes, both live and when replaying the journal.
// Entries at or before the account's last stream sequence are skipped
// (already applied), so replaying over a live state is harmless.
func (b *Book) Apply(e Entry) error {
	a := b.accounts[e.Account]
	if a == nil {
		a = &account{balances: map[string]*Balance{}}
		b.accounts[e.Account] = a
	}
	if e.StreamSeq != 0 && e.StreamSeq <= a.subjSeq {
		return nil
	}
	if e.Sequence != a.seq+1 {
		return fmt.Errorf("%w: account %s entry %d after %d", ErrCorruptJournal, e.Account, e.Sequence, a.seq)
	}
	bal := a.balances[e.Asset]
	if bal == nil {
		bal = &Balance{Account: e.Account, Asset: e.Asset}
		a.balances[e.Asset] = bal
	}
	if bal.Available+e.AvailableDelta != e.Available || bal.Held+e.HeldDelta != e.Held || e.Available < 0 || e.Held < 0 {
		return fmt.Errorf("%w: account %s entry %d does not add up", ErrCorruptJournal, e.Account, e.Sequence)
	}
	bal.Available, bal.Held, bal.Revision, bal.UpdatedAt = e.Available, e.Held, e.Sequence, e.Time
	b.supply[e.Asset] += e.AvailableDelta + e.HeldDelta
	a.seq, a.subjSeq = e.Sequence, e.StreamSeq
	b.applyRecords(e, *bal)
	b.applyPosition(e)
	if e.EngineSequence > b.engine[e.Instrument] {
		b.engine[e.Instrument] = e.EngineSequence
	}
	return nil
}

// applyRecords updates holds and idempotency records for e.
func (b *Book) applyRecords(e Entry, after Balance) {
	switch e.Reason {
	case ReasonDeposit, ReasonWithdrawal:
		b.transfers[key(e.Account, e.TransferID)] = &Transfer{
			ID: e.TransferID, Account: e.Account, Asset: e.Asset, Withdrawal: e.Reason == ReasonWithdrawal,
			Amount: abs(e.AvailableDelta), Memo: e.Memo, Balance: after,
		}
	case ReasonHold:
		b.holds[key(e.Account, e.HoldID)] = &Hold{
			ID: e.HoldID, Account: e.Account, Asset: e.Asset, Amount: e.HeldDelta, Remaining: e.HeldDelta,
			Reason: e.HoldReason, CreatedAt: e.Time, UpdatedAt: e.Time, Balance: after,
		}
	case ReasonRelease, ReasonSettlement, ReasonFee, ReasonMargin: // fees and margins come out of an order's hold
		if h := b.holds[key(e.Account, e.HoldID)]; h != nil && e.HeldDelta != 0 {
			h.Remaining += e.HeldDelta
			h.UpdatedAt = e.Time
		}
		if e.ReleaseID != "" {
			b.releases[key(e.Account, e.HoldID, e.ReleaseID)] = &Release{
				ID: e.ReleaseID, HoldID: e.HoldID, Account: e.Account, Amount: -e.HeldDelta, Balance: after,
			}
		}
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// add returns a+b or ErrOverflow.
func add(a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, ErrOverflow
	}
	return a + b, nil
}

// Tx is a set of changes computed against a book without changing it: the
// entries to append to the journal. Changes inside one Tx see each other
// (a trade between two orders of the same account).
type Tx struct {
	book    *Book
	now     time.Time
	bal     map[string]*Balance
	holds   map[string]*Hold
	Entries []Entry
}

// Begin starts a transaction at time now.
func (b *Book) Begin(now time.Time) *Tx {
	return &Tx{book: b, now: now, bal: map[string]*Balance{}, holds: map[string]*Hold{}}
}

// Reset drops every change planned so far.
func (t *Tx) Reset() {
	clear(t.bal)
	clear(t.holds)
	t.Entries = nil
}

func (t *Tx) balance(acct, asset string) *Balance {
	k := key(acct, asset)
	if bal, ok := t.bal[k]; ok {
		return bal
	}
	bal := t.book.Balance(acct, asset)
	t.bal[k] = &bal
	return &bal
}

func (t *Tx) hold(acct, id string) (*Hold, bool) {
	k := key(acct, id)
	if h, ok := t.holds[k]; ok {
		return h, true
	}
	h, ok := t.book.Hold(acct, id)
	if !ok {
		return nil, false
	}
	t.holds[k] = &h
	return &h, true
}

// change records an entry moving acct's asset by the deltas; base carries
// the entry's other fields.
func (t *Tx) change(base Entry, dAvail, dHeld int64) (Balance, error) {
	bal := t.balance(base.Account, base.Asset)
	avail, err := add(bal.Available, dAvail)
	if err != nil {
		return Balance{}, err
	}
	held, err := add(bal.Held, dHeld)
	if err != nil {
		return Balance{}, err
	}
	switch {
	case avail < 0:
		return Balance{}, fmt.Errorf("%w: %s has too little %s available", ErrInsufficientFunds, base.Account, base.Asset)
	case held < 0:
		return Balance{}, fmt.Errorf("%w: %s has too little %s held", ErrInsufficientFunds, base.Account, base.Asset)
	}
	bal.Available, bal.Held, bal.UpdatedAt = avail, held, t.now
	base.Available, base.Held, base.AvailableDelta, base.HeldDelta, base.Time = avail, held, dAvail, dHeld, t.now
	t.Entries = append(t.Entries, base)
	return *bal, nil
}

// Deposit credits amount (> 0) to acct's available asset. The asset's
// supply over all accounts must stay within int64 (ErrOverflow), so
// deposits of one asset must not plan concurrently (the service holds
// the asset's supply lock).
func (t *Tx) Deposit(transferID, acct, asset string, amount int64, memo string) error {
	if amount <= 0 {
		return invalid("amount", "must be positive")
	}
	if _, err := add(t.book.Supply(asset)+t.supplyDelta(asset), amount); err != nil {
		return fmt.Errorf("%w: amount: a deposit of %d units would take the %s held over all accounts past %d units", ErrOverflow, amount, asset, int64(math.MaxInt64))
	}
	_, err := t.change(Entry{EventID: "deposit-" + transferID, Account: acct, Asset: asset,
		Reason: ReasonDeposit, TransferID: transferID, Memo: memo}, amount, 0)
	return err
}

// supplyDelta is how the entries planned so far change asset's supply.
func (t *Tx) supplyDelta(asset string) int64 {
	var d int64
	for _, e := range t.Entries {
		if e.Asset == asset {
			d += e.AvailableDelta + e.HeldDelta
		}
	}
	return d
}

// Withdraw debits amount (> 0) from acct's available asset.
func (t *Tx) Withdraw(transferID, acct, asset string, amount int64, memo string) error {
	if amount <= 0 {
		return invalid("amount", "must be positive")
	}
	_, err := t.change(Entry{EventID: "withdraw-" + transferID, Account: acct, Asset: asset,
		Reason: ReasonWithdrawal, TransferID: transferID, Memo: memo}, -amount, 0)
	return err
}

// Hold moves amount (> 0) of acct's asset from available to held under a
// new hold id.
func (t *Tx) Hold(holdID, acct, asset string, amount int64, reason HoldReason) error {
	if amount <= 0 {
		return invalid("amount", "must be positive")
	}
	if _, exists := t.hold(acct, holdID); exists {
		return fmt.Errorf("%w: hold %s", ErrAlreadyExists, holdID)
	}
	if _, err := t.change(Entry{EventID: "hold-" + holdID, Account: acct, Asset: asset,
		Reason: ReasonHold, HoldID: holdID, HoldReason: reason, OrderID: orderOf(holdID, reason)}, -amount, amount); err != nil {
		return err
	}
	t.holds[key(acct, holdID)] = &Hold{ID: holdID, Account: acct, Asset: asset, Amount: amount, Remaining: amount, Reason: reason}
	return nil
}

func orderOf(holdID string, r HoldReason) string {
	if r == HoldOrder {
		return holdID
	}
	return ""
}

// Release moves amount of a hold back to available; amount < 0 releases
// everything that remains. It returns what was released (0: nothing left).
// cause fills the entry's identity fields (EventID, ReleaseID, engine ids).
func (t *Tx) Release(acct, holdID string, amount int64, cause Entry) (int64, error) {
	h, ok := t.hold(acct, holdID)
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrHoldNotFound, holdID)
	}
	if amount < 0 {
		amount = h.Remaining
	}
	if amount > h.Remaining {
		return 0, fmt.Errorf("%w: release %d of hold %s with %d remaining", ErrInsufficientFunds, amount, holdID, h.Remaining)
	}
	if amount == 0 {
		return 0, nil
	}
	cause.Account, cause.Asset, cause.Reason, cause.HoldID = acct, h.Asset, ReasonRelease, holdID
	cause.OrderID = orderOf(holdID, h.Reason)
	if _, err := t.change(cause, amount, -amount); err != nil {
		return 0, err
	}
	h.Remaining -= amount
	return amount, nil
}

// Trade is a parsed engine trade: the buyer pays Quote of QuoteAsset from
// the hold of BuyOrder and receives Base of BaseAsset; the seller the
// reverse. A *Filled flag says the order has nothing left, so what remains
// of its hold is released.
type Trade struct {
	EventID, Instrument    string
	EngineSequence         uint64
	TradeID                string
	BaseAsset, QuoteAsset  string
	Base, Quote            int64
	BuyAccount, BuyOrder   string
	SellAccount, SellOrder string
	BuyFilled, SellFilled  bool
	// BuyFee and SellFee are the buyer's and the seller's fees in the quote
	// asset; FeeAccount receives them.
	BuyFee, SellFee int64
	FeeAccount      string
}

// Settle applies a trade: both sides in one transaction.
func (t *Tx) Settle(tr Trade) error {
	if tr.Base <= 0 || tr.Quote <= 0 {
		return invalid("trade.quantity", "must be positive")
	}
	cause := Entry{Instrument: tr.Instrument, EngineEventID: tr.EventID, EngineSequence: tr.EngineSequence, TradeID: tr.TradeID}
	if err := t.payFromHold(tr.BuyAccount, tr.BuyOrder, tr.QuoteAsset, tr.Quote, cause, "buy-pay"); err != nil {
		return err
	}
	if err := t.credit(tr.BuyAccount, tr.BuyOrder, tr.BaseAsset, tr.Base, cause, "buy-receive"); err != nil {
		return err
	}
	if err := t.payFromHold(tr.SellAccount, tr.SellOrder, tr.BaseAsset, tr.Base, cause, "sell-pay"); err != nil {
		return err
	}
	if err := t.credit(tr.SellAccount, tr.SellOrder, tr.QuoteAsset, tr.Quote, cause, "sell-receive"); err != nil {
		return err
	}
	if err := t.fees(tr, cause); err != nil {
		return err
	}
	rel := Entry{Instrument: tr.Instrument, EngineEventID: tr.EventID, EngineSequence: tr.EngineSequence}
	if tr.BuyFilled {
		rel.EventID = tr.EventID + "-buy-leftover"
		if _, err := t.Release(tr.BuyAccount, tr.BuyOrder, -1, rel); err != nil {
			return err
		}
	}
	if tr.SellFilled {
		rel.EventID = tr.EventID + "-sell-leftover"
		if _, err := t.Release(tr.SellAccount, tr.SellOrder, -1, rel); err != nil {
			return err
		}
	}
	return nil
}

// fees charges a trade's fees: the buyer's from its order's hold, the
// seller's from what it received, both to the fee account.
func (t *Tx) fees(tr Trade, cause Entry) error {
	if tr.BuyFee < 0 || tr.SellFee < 0 {
		return invalid("trade.fee", "must not be negative")
	}
	total, err := add(tr.BuyFee, tr.SellFee)
	if err != nil || total == 0 {
		return err
	}
	if tr.FeeAccount == "" {
		return invalid("trade.fee", "a fee with no fee account")
	}
	cause.Reason = ReasonFee
	if tr.BuyFee > 0 {
		if err := t.payFromHold(tr.BuyAccount, tr.BuyOrder, tr.QuoteAsset, tr.BuyFee, cause, "buy-fee"); err != nil {
			return err
		}
	}
	if tr.SellFee > 0 {
		e := cause
		e.EventID, e.Account, e.Asset, e.OrderID = cause.EngineEventID+"-sell-fee", tr.SellAccount, tr.QuoteAsset, tr.SellOrder
		if _, err := t.change(e, -tr.SellFee, 0); err != nil {
			return err
		}
	}
	e := cause
	e.EventID, e.Account, e.Asset = cause.EngineEventID+"-fee", tr.FeeAccount, tr.QuoteAsset
	_, err = t.change(e, total, 0)
	return err
}

func (t *Tx) payFromHold(acct, order, asset string, amount int64, cause Entry, role string) error {
	h, ok := t.hold(acct, order)
	switch {
	case !ok:
		return fmt.Errorf("%w: order %s of %s", ErrHoldNotFound, order, acct)
	case h.Asset != asset:
		return fmt.Errorf("%w: hold %s is in %s, the trade pays %s", ErrInsufficientFunds, order, h.Asset, asset)
	case h.Remaining < amount:
		return fmt.Errorf("%w: hold %s has %d, the trade pays %d", ErrInsufficientFunds, order, h.Remaining, amount)
	}
	cause.EventID, cause.Account, cause.Asset = cause.EngineEventID+"-"+role, acct, asset
	cause.HoldID, cause.OrderID = order, order
	if cause.Reason == 0 {
		cause.Reason = ReasonSettlement
	}
	if _, err := t.change(cause, 0, -amount); err != nil {
		return err
	}
	h.Remaining -= amount
	return nil
}

func (t *Tx) credit(acct, order, asset string, amount int64, cause Entry, role string) error {
	cause.EventID, cause.Account, cause.Asset = cause.EngineEventID+"-"+role, acct, asset
	cause.Reason, cause.OrderID = ReasonSettlement, order
	_, err := t.change(cause, amount, 0)
	return err
}

// Accounts returns the accounts the transaction's entries touch, in order
// of first appearance.
func (t *Tx) Accounts() []string {
	var out []string
	for _, e := range t.Entries {
		if !slices.Contains(out, e.Account) {
			out = append(out, e.Account)
		}
	}
	return out
}
