package wallet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/paging"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// instruments is a lookup table implementing Instruments.
type instruments map[string]*metadatav1.Instrument

func (m instruments) Get(_ context.Context, symbol string) (*metadatav1.Instrument, error) {
	if i, ok := m[symbol]; ok {
		return i, nil
	}
	return nil, fmt.Errorf("instrument %s not found", symbol)
}

func (m instruments) Trades(_ context.Context, asset string) (bool, error) {
	for _, i := range m {
		if i.GetBaseAsset() == asset || i.GetQuoteAsset() == asset {
			return true, nil
		}
	}
	return false, nil
}

var testInstruments = instruments{
	"BTCUSDT": {Symbol: "BTCUSDT", BaseAsset: "BTC", QuoteAsset: "USDT", PriceScale: 2, QuantityScale: 5},
	"ETHUSDT": {Symbol: "ETHUSDT", BaseAsset: "ETH", QuoteAsset: "USDT", PriceScale: 2, QuantityScale: 4},
}

// env is one embedded server shared by the wallet instances of a test.
type env struct {
	t  *testing.T
	js jetstream.JetStream // to inspect the broker
	// clock, when set, is the instances' clock.
	clock func() time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := embeddedtest.New(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, js: s.JetStream()}
}

// instance is a running wallet service and a Connect client of it.
type instance struct {
	svc    *Service
	client walletv1connect.WalletServiceClient
	stop   func()
}

func (e *env) start(cfg Config) *instance {
	e.t.Helper()
	client := streams.NewClient(e.js, streams.DefaultCatalog())
	svc, err := New(cfg, Deps{
		Streams:     client,
		Publisher:   client.Publisher(streams.WithSource("tradex/wallet")),
		Instruments: testInstruments, Clock: e.clock,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.run(svc)
}

// run runs svc until the test ends and serves it over HTTP.
func (e *env) run(svc *Service) *instance {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	select {
	case <-svc.Ready():
	case err := <-done:
		cancel()
		e.t.Fatalf("run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		e.t.Fatal("wallet not ready")
	}
	path, h := svc.Handler()
	mux := httptest.NewServer(h)
	_ = path
	var once sync.Once
	stop := func() {
		once.Do(func() {
			mux.Close()
			cancel()
			if err := <-done; err != nil {
				e.t.Errorf("run: %v", err)
			}
		})
	}
	e.t.Cleanup(stop)
	return &instance{svc: svc, client: walletv1connect.NewWalletServiceClient(mux.Client(), mux.URL), stop: stop}
}

func testConfig() Config {
	cfg := Default()
	cfg.SnapshotEvery = 0
	cfg.Concurrency = 2
	return cfg
}

func codeOf(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("err = %v (%v), want %v", err, got, want)
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func deposit(t *testing.T, c walletv1connect.WalletServiceClient, id, acct, asset, amount string) *walletv1.DepositResponse {
	t.Helper()
	return must[*walletv1.DepositResponse](t)(c.Deposit(t.Context(), &walletv1.DepositRequest{
		TransferId: id, AccountId: acct, Asset: asset, Amount: amount}))
}

func hold(t *testing.T, c walletv1connect.WalletServiceClient, id, acct, asset, amount string) *walletv1.HoldBalanceResponse {
	t.Helper()
	return must[*walletv1.HoldBalanceResponse](t)(c.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{
		HoldId: id, AccountId: acct, Asset: asset, Amount: amount, Reason: walletv1.HoldReason_HOLD_REASON_ORDER}))
}

// balance returns "available/held" of an account's asset.
func balance(t *testing.T, c walletv1connect.WalletServiceClient, acct, asset string) string {
	t.Helper()
	res := must[*walletv1.GetBalanceResponse](t)(c.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: acct, Asset: asset}))
	return res.GetBalance().GetAvailable() + "/" + res.GetBalance().GetHeld()
}

func TestDepositWithdrawAndErrors(t *testing.T) {
	t.Parallel()
	w := newEnv(t).start(testConfig())
	c := w.client

	res := deposit(t, c, "t1", "alice", "USDT", "100.5")
	if res.GetReplayed() || res.GetBalance().GetAvailable() != "100.50000000" || res.GetBalance().GetRevision() != 1 {
		t.Fatalf("deposit: %v", res)
	}
	again := deposit(t, c, "t1", "alice", "USDT", "100.5")
	if !again.GetReplayed() || !proto.Equal(again.GetBalance(), res.GetBalance()) {
		t.Fatalf("repeat: %v, want replay of %v", again, res)
	}
	_, err := c.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "t1", AccountId: "alice", Asset: "USDT", Amount: "1"})
	codeOf(t, err, connect.CodeAlreadyExists)

	wd := must[*walletv1.WithdrawResponse](t)(c.Withdraw(t.Context(), &walletv1.WithdrawRequest{
		TransferId: "t2", AccountId: "alice", Asset: "USDT", Amount: "0.5", Memo: "out"}))
	if wd.GetBalance().GetAvailable() != "100.00000000" {
		t.Fatalf("withdraw: %v", wd)
	}
	_, err = c.Withdraw(t.Context(), &walletv1.WithdrawRequest{TransferId: "t3", AccountId: "alice", Asset: "USDT", Amount: "100.00000001"})
	codeOf(t, err, connect.CodeFailedPrecondition)
	_, err = c.Withdraw(t.Context(), &walletv1.WithdrawRequest{TransferId: "t2", AccountId: "alice", Asset: "USDT", Amount: "0.5"})
	codeOf(t, err, connect.CodeAlreadyExists) // memo differs

	for _, bad := range []struct {
		req   *walletv1.DepositRequest
		field string
	}{
		{&walletv1.DepositRequest{AccountId: "alice", Asset: "USDT", Amount: "1"}, "transfer_id"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "a.b", Asset: "USDT", Amount: "1"}, "account_id"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Amount: "1"}, "asset"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "-1"}, "amount"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "0"}, "amount"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "0.000000001"}, "amount"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "1e3"}, "amount"},
		// Account ids a credential could not name, assets that are not asset
		// codes, memos without bound or with control characters.
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice\u00e9", Asset: "USDT", Amount: "1"}, "account_id"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: strings.Repeat("a", 65), Asset: "USDT", Amount: "1"}, "account_id"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "usdt", Amount: "1"}, "asset"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT\u0000", Amount: "1"}, "asset"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "1", Memo: strings.Repeat("m", 257)}, "memo"},
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "USDT", Amount: "1", Memo: "line\nbreak"}, "memo"},
		// An asset no instrument trades could never be used.
		{&walletv1.DepositRequest{TransferId: "x", AccountId: "alice", Asset: "DOGE", Amount: "1"}, "asset"},
	} {
		_, err := c.Deposit(t.Context(), bad.req)
		codeOf(t, err, connect.CodeInvalidArgument)
		var ce *connect.Error
		if errors.As(err, &ce) && !strings.Contains(ce.Message(), bad.field) {
			t.Errorf("%v: message %q does not name %s", bad.req, ce.Message(), bad.field)
		}
	}

	if got := balance(t, c, "bob", "BTC"); got != "0.00000000/0.00000000" {
		t.Errorf("never held: %s", got)
	}
	_, err = c.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "alice"})
	codeOf(t, err, connect.CodeInvalidArgument)
}

// Deposits keep every asset's supply over all accounts within int64, so
// that no settlement can overflow a balance (a trade moves an asset
// between accounts: none can hold more than all of them). Two accounts
// near the limit each, one selling to the other, dead-lettered the
// settlement while both orders showed filled.
func TestDepositsKeepTheSupplyInRange(t *testing.T) {
	t.Parallel()
	w := newEnv(t).start(testConfig())
	c := w.client
	const nearlyAll = "92233720368" // 9223372036800000000 of 9223372036854775807 units at scale 8
	deposit(t, c, "t1", "whale", "USDT", nearlyAll)
	_, err := c.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "t2", AccountId: "minnow", Asset: "USDT", Amount: "1"})
	codeOf(t, err, connect.CodeInvalidArgument)
	if ce := new(connect.Error); errors.As(err, &ce) && !strings.Contains(ce.Message(), "amount") {
		t.Errorf("message %q does not name the amount", ce.Message())
	}
	deposit(t, c, "t3", "minnow", "BTC", "1") // another asset has its own supply
	must[*walletv1.WithdrawResponse](t)(c.Withdraw(t.Context(), &walletv1.WithdrawRequest{
		TransferId: "t4", AccountId: "whale", Asset: "USDT", Amount: "1"}))
	deposit(t, c, "t5", "minnow", "USDT", "1") // room again

	// Deposits of one asset to different accounts plan one at a time: of
	// two that fit only together, one passes. 0.54775807 USDT is left.
	errs := make(chan error, 2)
	for _, acct := range []string{"carol", "dave"} {
		go func() {
			_, err := c.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "half-" + acct, AccountId: acct, Asset: "USDT", Amount: "0.5"})
			errs <- err
		}()
	}
	passed := 0
	for range 2 {
		if err := <-errs; err == nil {
			passed++
		} else if connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("concurrent deposit: %v", err)
		}
	}
	if passed != 1 {
		t.Errorf("%d of two concurrent deposits passed; want 1", passed)
	}
}

func TestHoldAndRelease(t *testing.T) {
	t.Parallel()
	w := newEnv(t).start(testConfig())
	c := w.client
	deposit(t, c, "t1", "alice", "USDT", "100")

	h := hold(t, c, "o1", "alice", "USDT", "60")
	if h.GetReplayed() || h.GetHold().GetRemaining() != "60.00000000" || h.GetBalance().GetHeld() != "60.00000000" {
		t.Fatalf("hold: %v", h)
	}
	if again := hold(t, c, "o1", "alice", "USDT", "60"); !again.GetReplayed() || !proto.Equal(again.GetBalance(), h.GetBalance()) {
		t.Fatalf("repeat hold: %v", again)
	}
	_, err := c.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: "o1", AccountId: "alice", Asset: "USDT", Amount: "61",
		Reason: walletv1.HoldReason_HOLD_REASON_ORDER})
	codeOf(t, err, connect.CodeAlreadyExists)
	_, err = c.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: "o2", AccountId: "alice", Asset: "USDT", Amount: "40.00000001",
		Reason: walletv1.HoldReason_HOLD_REASON_ORDER})
	codeOf(t, err, connect.CodeFailedPrecondition)
	_, err = c.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: "o2", AccountId: "alice", Asset: "USDT", Amount: "1"})
	codeOf(t, err, connect.CodeInvalidArgument)

	ten := "10"
	rel := must[*walletv1.ReleaseHoldResponse](t)(c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{
		HoldId: "o1", AccountId: "alice", Amount: &ten, ReleaseId: "r1"}))
	if rel.GetReplayed() || rel.GetHold().GetRemaining() != "50.00000000" || rel.GetBalance().GetAvailable() != "50.00000000" {
		t.Fatalf("release: %v", rel)
	}
	again := must[*walletv1.ReleaseHoldResponse](t)(c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{
		HoldId: "o1", AccountId: "alice", Amount: &ten, ReleaseId: "r1"}))
	if !again.GetReplayed() || !proto.Equal(again.GetBalance(), rel.GetBalance()) {
		t.Fatalf("repeat release: %v", again)
	}
	eleven := "11"
	_, err = c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "o1", AccountId: "alice", Amount: &eleven, ReleaseId: "r1"})
	codeOf(t, err, connect.CodeAlreadyExists)
	_, err = c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "o1", AccountId: "alice", Amount: &eleven})
	codeOf(t, err, connect.CodeInvalidArgument)
	big := "51"
	_, err = c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "o1", AccountId: "alice", Amount: &big, ReleaseId: "r2"})
	codeOf(t, err, connect.CodeFailedPrecondition)
	_, err = c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "nope", AccountId: "alice"})
	codeOf(t, err, connect.CodeNotFound)

	all := must[*walletv1.ReleaseHoldResponse](t)(c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "o1", AccountId: "alice"}))
	if all.GetReplayed() || all.GetHold().GetRemaining() != "0.00000000" || all.GetBalance().GetAvailable() != "100.00000000" {
		t.Fatalf("full release: %v", all)
	}
	if again := must[*walletv1.ReleaseHoldResponse](t)(c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "o1", AccountId: "alice"})); !again.GetReplayed() {
		t.Fatalf("repeat full release: %v", again)
	}
}

func TestListBalances(t *testing.T) {
	t.Parallel()
	w := newEnv(t).start(testConfig())
	c := w.client
	deposit(t, c, "t1", "alice", "USDT", "1")
	deposit(t, c, "t2", "alice", "BTC", "2")
	deposit(t, c, "t3", "bob", "ETH", "3")
	must[*walletv1.WithdrawResponse](t)(c.Withdraw(t.Context(), &walletv1.WithdrawRequest{TransferId: "t4", AccountId: "bob", Asset: "ETH", Amount: "3"}))

	list := func(req *walletv1.ListBalancesRequest) (names []string, next string) {
		res := must[*walletv1.ListBalancesResponse](t)(c.ListBalances(t.Context(), req))
		for _, b := range res.GetBalances() {
			names = append(names, b.GetAccountId()+":"+b.GetAsset())
		}
		return names, res.GetPage().GetNextPageToken()
	}
	if got, _ := list(&walletv1.ListBalancesRequest{}); fmt.Sprint(got) != "[alice:BTC alice:USDT]" {
		t.Errorf("all non-zero: %v", got)
	}
	if got, _ := list(&walletv1.ListBalancesRequest{IncludeZero: true}); fmt.Sprint(got) != "[alice:BTC alice:USDT bob:ETH]" {
		t.Errorf("all: %v", got)
	}
	if got, _ := list(&walletv1.ListBalancesRequest{AccountId: "alice", Assets: []string{"USDT"}}); fmt.Sprint(got) != "[alice:USDT]" {
		t.Errorf("filtered: %v", got)
	}
	first, tok := list(&walletv1.ListBalancesRequest{IncludeZero: true, Page: &commonv1.PageRequest{PageSize: 2}})
	second, end := list(&walletv1.ListBalancesRequest{IncludeZero: true, Page: &commonv1.PageRequest{PageSize: 2, PageToken: tok}})
	if fmt.Sprint(first, second) != "[alice:BTC alice:USDT] [bob:ETH]" || tok == "" || end != "" {
		t.Errorf("pages: %v %v %q", first, second, end)
	}
	_, err := c.ListBalances(t.Context(), &walletv1.ListBalancesRequest{Page: &commonv1.PageRequest{PageToken: "x"}})
	codeOf(t, err, connect.CodeInvalidArgument)
	// Tokens of another list, offsets that would overflow or go negative,
	// and negative page sizes are refused, naming the field.
	for _, bad := range []struct {
		page  *commonv1.PageRequest
		field string
	}{
		{&commonv1.PageRequest{PageToken: paging.OffsetToken("order.orders", 2)}, "page.page_token"},
		{&commonv1.PageRequest{PageToken: paging.OffsetToken(balancesList, math.MaxInt)}, "page.page_token"},
		{&commonv1.PageRequest{PageToken: paging.OffsetToken(balancesList, -1)}, "page.page_token"},
		{&commonv1.PageRequest{PageToken: strconv.Itoa(2)}, "page.page_token"}, // the scheme before paging
		{&commonv1.PageRequest{PageSize: -1}, "page.page_size"},
	} {
		_, err := c.ListBalances(t.Context(), &walletv1.ListBalancesRequest{IncludeZero: true, Page: bad.page})
		codeOf(t, err, connect.CodeInvalidArgument)
		if !strings.Contains(err.Error(), bad.field) {
			t.Errorf("%v: %v does not name %s", bad.page, err, bad.field)
		}
	}
	// A page past the end is empty, not an error.
	if got, next := list(&walletv1.ListBalancesRequest{Page: &commonv1.PageRequest{PageToken: paging.OffsetToken(balancesList, 10)}}); len(got) != 0 || next != "" {
		t.Errorf("past the end: %v %q", got, next)
	}
}

func TestWatchBalances(t *testing.T) {
	t.Parallel()
	w := newEnv(t).start(testConfig())
	c := w.client
	deposit(t, c, "t1", "alice", "USDT", "1")
	deposit(t, c, "t2", "bob", "USDT", "2")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := c.WatchBalances(ctx, &walletv1.WatchBalancesRequest{AccountId: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	next := func() *walletv1.WatchBalancesResponse {
		t.Helper()
		if !stream.Receive() {
			t.Fatalf("stream ended: %v", stream.Err())
		}
		return stream.Msg()
	}
	if m := next(); m.GetCurrent().GetAccountId() != "alice" || m.GetCurrent().GetAvailable() != "1.00000000" {
		t.Fatalf("current: %v", m)
	}
	if m := next(); m.GetSnapshotEnd() == nil || m.GetSnapshotEnd().GetSequence() != 2 {
		t.Fatalf("snapshot end: %v", m)
	}
	deposit(t, c, "t3", "bob", "USDT", "5")
	deposit(t, c, "t4", "alice", "USDT", "4")
	if m := next(); m.GetChanged().GetAccountId() != "alice" || m.GetChanged().GetAvailable() != "5.00000000" ||
		m.GetChanged().GetAvailableDelta() != "4.00000000" || m.GetChanged().GetSequence() != 2 {
		t.Fatalf("changed: %v", m)
	}
}

// TestWatchAllBalances watches every account: the current balances of
// all, then the changes of all in journal order.
func TestWatchAllBalances(t *testing.T) {
	t.Parallel()
	w := newEnv(t).start(testConfig())
	c := w.client
	deposit(t, c, "t1", "alice", "USDT", "1")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := c.WatchBalances(ctx, &walletv1.WatchBalancesRequest{Assets: []string{"USDT"}})
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	var got []string
	for len(got) < 4 && stream.Receive() {
		switch m := stream.Msg(); {
		case m.GetCurrent() != nil:
			got = append(got, "current "+m.GetCurrent().GetAccountId()+" "+m.GetCurrent().GetAvailable())
		case m.GetSnapshotEnd() != nil:
			got = append(got, fmt.Sprint("end ", m.GetSnapshotEnd().GetSequence()))
			deposit(t, c, "t2", "bob", "BTC", "1") // not watched
			deposit(t, c, "t3", "bob", "USDT", "2")
			deposit(t, c, "t4", "alice", "USDT", "3")
		default:
			got = append(got, "changed "+m.GetChanged().GetAccountId()+" "+m.GetChanged().GetAvailable())
		}
	}
	want := "[current alice 1.00000000 end 1 changed bob 2.00000000 changed alice 4.00000000]"
	if fmt.Sprint(got) != want {
		t.Errorf("watch all: %v (stream: %v), want %s", got, stream.Err(), want)
	}
}

// TestRunFailsOnPermanentErrors: a snapshot store the catalog does not
// declare or a corrupt journal ends Run with an error at once instead of
// retrying for ever.
func TestRunFailsOnPermanentErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	client := streams.NewClient(e.js, streams.DefaultCatalog())
	pub := client.Publisher(streams.WithSource("tradex/wallet"))
	run := func(cfg Config) error {
		t.Helper()
		svc, err := New(cfg, Deps{Streams: client, Publisher: pub, Instruments: testInstruments})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		err = svc.Run(ctx)
		if ctx.Err() != nil {
			t.Fatalf("Run retried until its deadline (%v)", err)
		}
		return err
	}

	cfg := testConfig()
	cfg.SnapshotEvery = 10
	cfg.SnapshotBucket = "tradex_not_in_catalog"
	if err := run(cfg); !errors.Is(err, streams.ErrUnknownStore) {
		t.Errorf("unknown snapshot store: Run = %v, want ErrUnknownStore", err)
	}

	// A journal entry that is not a BalanceChanged (written around the publisher's type check).
	if _, err := e.js.Publish(t.Context(), streams.TopicBalanceChanged+".alice", []byte{0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if err := run(testConfig()); !errors.Is(err, ErrCorruptJournal) {
		t.Errorf("corrupt journal: Run = %v, want ErrCorruptJournal", err)
	}
}

// engine publishes hand-built engine events.
type engine struct {
	t   *testing.T
	pub *streams.Publisher
	n   int
	ctx context.Context //nolint:containedctx // the next event's trace (nil: the test's context)
}

func newEngine(t *testing.T, js jetstream.JetStream) *engine {
	return &engine{t: t, pub: streams.NewPublisher(js, streams.DefaultCatalog(), streams.WithSource("tradex/matching"))}
}

func (e *engine) publish(ev *enginev1.EngineEvent) uint64 {
	e.t.Helper()
	e.n++
	ev.EventId = fmt.Sprintf("BTCUSDT-%d", e.n)
	ev.InstrumentId = "BTCUSDT"
	ctx := e.ctx
	if ctx == nil {
		ctx = e.t.Context()
	}
	seq, err := e.pub.Publish(ctx, streams.TopicEngineEvent, "BTCUSDT", ev, streams.WithMsgID(ev.EventId))
	if err != nil {
		e.t.Fatal(err)
	}
	return seq
}

func (e *engine) trade(price, qty, takerOrder, takerAcct string, takerSide commonv1.Side, takerLeft, makerOrder, makerAcct, makerLeft string) uint64 {
	makerSide := commonv1.Side_SIDE_SELL
	if takerSide == commonv1.Side_SIDE_SELL {
		makerSide = commonv1.Side_SIDE_BUY
	}
	return e.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
		TradeId: fmt.Sprint("trade-", e.n+1), Price: price, Quantity: qty,
		TakerOrderId: takerOrder, TakerAccountId: takerAcct, TakerSide: takerSide, TakerRemainingQuantity: takerLeft,
		MakerOrderId: makerOrder, MakerAccountId: makerAcct, MakerSide: makerSide, MakerRemainingQuantity: makerLeft,
	}}})
}

func (e *engine) cancel(order, acct, left string) uint64 {
	return e.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Cancelled{Cancelled: &enginev1.OrderCancelled{
		OrderId: order, AccountId: acct, RemainingQuantity: left}}})
}

// settled waits until the wallet applied the engine event at seq.
func settled(t *testing.T, w *instance, seq uint64) {
	t.Helper()
	polltest.True(t, fmt.Sprint("engine event ", seq), func() bool {
		var got uint64
		w.svc.st.read(func(b *Book) { got = b.EngineSequence("BTCUSDT") })
		return got >= seq
	})
}

// settlementScenario runs deposits, holds, trades and a cancel; it returns
// the last engine sequence.
func settlementScenario(t *testing.T, w *instance, eng *engine) uint64 {
	t.Helper()
	c := w.client
	deposit(t, c, "d1", "alice", "USDT", "10000")
	deposit(t, c, "d2", "bob", "BTC", "1")
	deposit(t, c, "d3", "carol", "BTC", "1")
	deposit(t, c, "d4", "dave", "USDT", "5000")
	hold(t, c, "A1", "alice", "USDT", "5000") // buy 0.5 @ 10000
	hold(t, c, "B1", "bob", "BTC", "0.5")     // sell 0.5 @ 9000
	hold(t, c, "C1", "carol", "BTC", "1")     // sell 1 @ 9000
	hold(t, c, "D1", "dave", "USDT", "3600")  // buy 0.4 @ 9000

	// alice buys 0.2 then 0.3 from bob at 9000: a partial fill, then a full
	// fill of both; alice's 500 USDT left over is released.
	eng.trade("9000.00", "0.20000", "A1", "alice", commonv1.Side_SIDE_BUY, "0.30000", "B1", "bob", "0.30000")
	seq := eng.trade("9000.00", "0.30000", "A1", "alice", commonv1.Side_SIDE_BUY, "0.00000", "B1", "bob", "0.00000")
	settled(t, w, seq)
	for _, c := range []struct{ acct, asset, want string }{
		{"alice", "USDT", "5500.00000000/0.00000000"}, {"alice", "BTC", "0.50000000/0.00000000"},
		{"bob", "BTC", "0.50000000/0.00000000"}, {"bob", "USDT", "4500.00000000/0.00000000"},
	} {
		if got := balance(t, w.client, c.acct, c.asset); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.acct, c.asset, got, c.want)
		}
	}

	// carol (maker) sells 0.4 to dave (taker), then cancels the rest.
	eng.trade("9000.00", "0.40000", "D1", "dave", commonv1.Side_SIDE_BUY, "0.00000", "C1", "carol", "0.60000")
	if got := balance(t, w.client, "carol", "BTC"); got == "0.60000000/0.00000000" {
		t.Fatal("cancel applied before it was sent")
	}
	seq = eng.cancel("C1", "carol", "0.60000")
	settled(t, w, seq)
	for _, c := range []struct{ acct, asset, want string }{
		{"carol", "BTC", "0.60000000/0.00000000"}, {"carol", "USDT", "3600.00000000/0.00000000"},
		{"dave", "BTC", "0.40000000/0.00000000"}, {"dave", "USDT", "1400.00000000/0.00000000"},
	} {
		if got := balance(t, w.client, c.acct, c.asset); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.acct, c.asset, got, c.want)
		}
	}
	return seq
}

func totals(w *instance) map[string]int64 {
	var t map[string]int64
	w.svc.st.read(func(b *Book) { t = b.Totals() })
	return t
}

func TestSettlement(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(testConfig())
	eng := newEngine(t, e.js)
	last := settlementScenario(t, w, eng)
	if got := totals(w); got["USDT"] != 15000_00000000 || got["BTC"] != 2_00000000 {
		t.Errorf("totals %v: funds not conserved", got)
	}

	// A redelivered engine event is applied once.
	var before []byte
	w.svc.st.read(func(b *Book) { before, _ = json.Marshal(snapshotOf(b, time.Time{})) })
	redelivered := &streams.Message[*enginev1.EngineEvent]{Sequence: last, Payload: &enginev1.EngineEvent{
		EventId: "BTCUSDT-6", InstrumentId: "BTCUSDT",
		Event: &enginev1.EngineEvent_Cancelled{Cancelled: &enginev1.OrderCancelled{OrderId: "C1", AccountId: "carol"}}}}
	if err := w.svc.settle(t.Context(), redelivered); err != nil {
		t.Fatal(err)
	}
	var after []byte
	w.svc.st.read(func(b *Book) { after, _ = json.Marshal(snapshotOf(b, time.Time{})) })
	if string(before) != string(after) {
		t.Error("a redelivered engine event changed the state")
	}

	// Replaying the whole engine stream (a new consumer from the start) applies nothing twice.
	w.stop()
	if err := e.js.DeleteConsumer(t.Context(), streams.StreamName(streams.TopicEngineEvent), "wallet-settlement"); err != nil {
		t.Fatal(err)
	}
	w2 := e.start(testConfig())
	polltest.True(t, "replay of the engine stream", func() bool {
		info, err := e.js.Consumer(t.Context(), streams.StreamName(streams.TopicEngineEvent), "wallet-settlement")
		if err != nil {
			return false
		}
		ci, err := info.Info(t.Context())
		return err == nil && ci.AckFloor.Stream >= last
	})
	replayed := []byte(stateOf(t, w2))
	if string(before) != string(replayed) {
		t.Errorf("replay changed the state:\n%s\n%s", before, replayed)
	}
}

func TestSettlementFailureIsDeadLettered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(testConfig())
	eng := newEngine(t, e.js)
	deposit(t, w.client, "d1", "alice", "USDT", "100")
	hold(t, w.client, "A1", "alice", "USDT", "100")
	// The trade costs more than alice's hold: nothing moves, the event goes to the DLQ.
	eng.trade("9000.00", "1.00000", "A1", "alice", commonv1.Side_SIDE_BUY, "0", "B1", "bob", "0")
	dlq, err := e.js.Stream(t.Context(), streams.StreamName(streams.DLQTopic(streams.TopicEngineEvent)))
	if err != nil {
		t.Fatal(err)
	}
	polltest.True(t, "dead letter", func() bool {
		info, err := dlq.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	})
	if got := balance(t, w.client, "alice", "USDT"); got != "0.00000000/100.00000000" {
		t.Errorf("alice = %s", got)
	}
	// Later events of the instrument still settle.
	seq := eng.cancel("A1", "alice", "1")
	settled(t, w, seq)
	if got := balance(t, w.client, "alice", "USDT"); got != "100.00000000/0.00000000" {
		t.Errorf("alice after cancel = %s", got)
	}
}

func stateOf(t *testing.T, w *instance) string {
	t.Helper()
	var data []byte
	w.svc.st.read(func(b *Book) {
		var err error
		if data, err = json.Marshal(snapshotOf(b, time.Time{})); err != nil {
			t.Fatal(err)
		}
	})
	return string(data)
}

func TestRestartRebuildsState(t *testing.T) {
	t.Parallel()
	for _, every := range []int{0, 3} {
		t.Run(fmt.Sprint("snapshot every ", every), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			cfg := testConfig()
			cfg.SnapshotEvery = every
			w := e.start(cfg)
			settlementScenario(t, w, newEngine(t, e.js))
			deposit(t, w.client, "d9", "zed", "ETH", "1") // after the last snapshot
			before := stateOf(t, w)
			if every > 0 { // snapshots are written in the background: wait for one
				snaps, err := e.js.ObjectStore(t.Context(), cfg.SnapshotBucket)
				if err != nil {
					t.Fatal(err)
				}
				polltest.Until(t, "a snapshot", func() error {
					data, err := snaps.GetBytes(t.Context(), snapshotKey)
					if err != nil {
						return err
					}
					var snap snapshot
					if err := json.Unmarshal(data, &snap); err != nil || snap.Applied == 0 {
						return fmt.Errorf("snapshot %v: %w", snap.Applied, err)
					}
					return nil
				})
			}
			w.stop()
			w2 := e.start(cfg)
			if after := stateOf(t, w2); after != before {
				t.Errorf("state after restart differs:\n%s\n%s", before, after)
			}
			// Repeats are still recognised after the restart.
			if r := deposit(t, w2.client, "d9", "zed", "ETH", "1"); !r.GetReplayed() {
				t.Errorf("repeat after restart: %v", r)
			}
			if r := hold(t, w2.client, "A1", "alice", "USDT", "5000"); !r.GetReplayed() {
				t.Errorf("repeat hold after restart: %v", r)
			}
		})
	}
}

func TestConcurrentInstancesKeepTheJournalConsistent(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	cfg.WriteAttempts = 100
	a, b := e.start(cfg), e.start(cfg)
	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i, w := range []*instance{a, b} {
		wg.Go(func() {
			for j := range n {
				_, err := w.client.Deposit(t.Context(), &walletv1.DepositRequest{
					TransferId: fmt.Sprintf("w%d-%d", i, j), AccountId: "shared", Asset: "USDT", Amount: "1"})
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A fresh instance rebuilds the journal: contiguous sequences (Apply
	// checks them) and every deposit counted once.
	c := e.start(cfg)
	if got := balance(t, c.client, "shared", "USDT"); got != fmt.Sprintf("%d.00000000/0.00000000", 2*n) {
		t.Errorf("shared = %s, want %d", got, 2*n)
	}
	var seq uint64
	c.svc.st.read(func(bk *Book) { seq, _ = bk.AccountSeq("shared") })
	if seq != 2*n {
		t.Errorf("journal sequence %d, want %d", seq, 2*n)
	}
}

// TestStaleSettlementRetries settles a trade on an instance whose state is
// behind the journal (another instance wrote since): the atomic batch's
// expected-sequence check fails, the instance re-reads and settles once.
func TestStaleSettlementRetries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.start(testConfig()), e.start(testConfig())
	deposit(t, a.client, "d1", "alice", "USDT", "1000")
	deposit(t, a.client, "d2", "bob", "BTC", "1")
	hold(t, a.client, "A1", "alice", "USDT", "900")
	hold(t, a.client, "B1", "bob", "BTC", "0.1")
	deposit(t, b.client, "d3", "alice", "USDT", "1") // a does not know
	deposit(t, b.client, "d4", "bob", "BTC", "1")

	msg := &streams.Message[*enginev1.EngineEvent]{Sequence: 1000, Payload: &enginev1.EngineEvent{
		EventId: "BTCUSDT-x", InstrumentId: "BTCUSDT", Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
			TradeId: "x", Price: "9000.00", Quantity: "0.10000",
			TakerOrderId: "A1", TakerAccountId: "alice", TakerSide: commonv1.Side_SIDE_BUY, TakerRemainingQuantity: "0",
			MakerOrderId: "B1", MakerAccountId: "bob", MakerSide: commonv1.Side_SIDE_SELL, MakerRemainingQuantity: "0",
		}}}}
	if err := a.svc.settle(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.settle(t.Context(), msg); err != nil { // b learns it from the journal: applied once
		t.Fatal(err)
	}
	c := e.start(testConfig())
	for _, w := range []struct{ acct, asset, want string }{
		{"alice", "USDT", "101.00000000/0.00000000"}, {"alice", "BTC", "0.10000000/0.00000000"},
		{"bob", "BTC", "1.90000000/0.00000000"}, {"bob", "USDT", "900.00000000/0.00000000"},
	} {
		if got := balance(t, c.client, w.acct, w.asset); got != w.want {
			t.Errorf("%s %s = %s, want %s", w.acct, w.asset, got, w.want)
		}
	}
	if stateOf(t, a) != stateOf(t, c) {
		t.Error("the instance that retried differs from a rebuilt one")
	}
}

// consumed waits until the settlement consumer has acked (or dead-lettered)
// the engine event at seq.
func consumed(t *testing.T, e *env, seq uint64) {
	t.Helper()
	polltest.True(t, fmt.Sprint("engine event ", seq, " consumed"), func() bool {
		c, err := e.js.Consumer(t.Context(), streams.StreamName(streams.TopicEngineEvent), "wallet-settlement")
		if err != nil {
			return false
		}
		ci, err := c.Info(t.Context())
		return err == nil && ci.AckFloor.Stream >= seq
	})
}

// TestPropertyThroughTheService runs random deposits, withdrawals, holds,
// trades, cancels and releases through the RPCs and the engine stream:
// every balance stays >= 0, each asset's total changes only by deposits and
// withdrawals, and a restarted instance rebuilds the same state.
func TestPropertyThroughTheService(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	cfg.SnapshotEvery = 7
	w := e.start(cfg)
	eng := newEngine(t, e.js)
	rng := rand.New(rand.NewPCG(7, 7)) //nolint:gosec // reproducible test input, not a secret
	accts := []string{"a", "b", "c"}
	scaled := map[string]int64{}
	type order struct{ acct, id, asset string }
	var orders []order
	amount := func() (string, int64) {
		n := rng.Int64N(100000) + 1 // in 10^-5 units
		return fmt.Sprintf("%d.%05d", n/100000, n%100000), n * 1000
	}
	for i := range 300 {
		acct := accts[rng.IntN(len(accts))]
		asset := []string{"BTC", "USDT"}[rng.IntN(2)]
		text, units := amount()
		switch rng.IntN(6) {
		case 0:
			deposit(t, w.client, fmt.Sprint("d", i), acct, asset, text)
			scaled[asset] += units
		case 1:
			_, err := w.client.Withdraw(t.Context(), &walletv1.WithdrawRequest{TransferId: fmt.Sprint("w", i), AccountId: acct, Asset: asset, Amount: text})
			if err == nil {
				scaled[asset] -= units
			} else if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatal(err)
			}
		case 2:
			id := fmt.Sprint("o", i)
			_, err := w.client.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: id, AccountId: acct, Asset: asset, Amount: text,
				Reason: walletv1.HoldReason_HOLD_REASON_ORDER})
			if err == nil {
				orders = append(orders, order{acct, id, asset})
			} else if connect.CodeOf(err) != connect.CodeFailedPrecondition {
				t.Fatal(err)
			}
		case 3, 4:
			var buy, sell *order
			for _, j := range rng.Perm(len(orders)) {
				if o := &orders[j]; o.asset == "USDT" && buy == nil {
					buy = o
				} else if o.asset == "BTC" && sell == nil {
					sell = o
				}
			}
			if buy == nil || sell == nil {
				continue
			}
			left := []string{"0", "1"}
			price := fmt.Sprintf("%d.%02d", rng.IntN(3), rng.IntN(100))
			qty := fmt.Sprintf("0.%05d", rng.IntN(99999)+1)
			seq := eng.trade(price, qty, buy.id, buy.acct, commonv1.Side_SIDE_BUY, left[rng.IntN(2)], sell.id, sell.acct, left[rng.IntN(2)])
			consumed(t, e, seq)
		case 5:
			if len(orders) == 0 {
				continue
			}
			o := orders[rng.IntN(len(orders))]
			consumed(t, e, eng.cancel(o.id, o.acct, "1"))
		}
		res := must[*walletv1.ListBalancesResponse](t)(w.client.ListBalances(t.Context(), &walletv1.ListBalancesRequest{IncludeZero: true, Page: &commonv1.PageRequest{PageSize: 1000}}))
		sums := map[string]int64{}
		for _, b := range res.GetBalances() {
			av := must[int64](t)(decimal.Parse(b.GetAvailable(), 8))
			held := must[int64](t)(decimal.Parse(b.GetHeld(), 8))
			if av < 0 || held < 0 {
				t.Fatalf("step %d: negative balance %v", i, b)
			}
			sums[b.GetAsset()] += av + held
		}
		for _, asset := range []string{"BTC", "USDT"} {
			if sums[asset] != scaled[asset] {
				t.Fatalf("step %d: %s total %d, deposits-withdrawals %d", i, asset, sums[asset], scaled[asset])
			}
		}
	}
	dlq := must[jetstream.Stream](t)(e.js.Stream(t.Context(), streams.StreamName(streams.DLQTopic(streams.TopicEngineEvent))))
	dead := must[*jetstream.StreamInfo](t)(dlq.Info(t.Context())).State.Msgs
	var settledTrades int
	w.svc.st.read(func(b *Book) {
		for _, h := range b.holds {
			if h.Remaining < h.Amount {
				settledTrades++
			}
		}
	})
	t.Logf("%d trades and cancels dead-lettered, %d holds used", dead, settledTrades)
	if settledTrades == 0 {
		t.Error("no trade settled: the test tests nothing")
	}
	before := stateOf(t, w)
	w.stop()
	if after := stateOf(t, e.start(cfg)); after != before {
		t.Errorf("state after restart differs:\n%s\n%s", before, after)
	}
}

// TestPersistentConflictIsAborted: a writer that may not retry and finds
// its state behind the journal answers Aborted and changes nothing.
func TestPersistentConflictIsAborted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	cfg.WriteAttempts = 1
	a, b := e.start(cfg), e.start(cfg)
	deposit(t, a.client, "d1", "alice", "USDT", "1")
	_, err := b.client.Deposit(t.Context(), &walletv1.DepositRequest{TransferId: "d2", AccountId: "alice", Asset: "USDT", Amount: "1"})
	codeOf(t, err, connect.CodeAborted)
	if got := balance(t, e.start(cfg).client, "alice", "USDT"); got != "1.00000000/0.00000000" {
		t.Errorf("alice = %s", got)
	}
}

// Writes of different accounts run concurrently in one instance, those of
// one account one at a time (and the journal's expected-sequence check
// would refuse a second writer anyway): racing holds on one account never
// overdraw it, holds on many accounts all land, the book covers the whole
// journal in order, and it equals a rebuild from the journal.
func TestConcurrentWritesOfOneInstance(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	cfg.SnapshotEvery = 7 // snapshots taken while writes are in flight
	w := e.start(cfg)
	const accounts, holds = 8, 12
	for a := range accounts {
		deposit(t, w.client, fmt.Sprintf("d%d", a), fmt.Sprintf("acct%d", a), "USDT", "100")
	}
	var wg sync.WaitGroup
	var granted, refused atomic.Int64
	errs := make(chan error, accounts*holds)
	for a := range accounts {
		for h := range holds {
			wg.Go(func() {
				_, err := w.client.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{
					HoldId: fmt.Sprintf("h%d-%d", a, h), AccountId: fmt.Sprintf("acct%d", a), Asset: "USDT",
					Amount: "10", Reason: walletv1.HoldReason_HOLD_REASON_ORDER,
				})
				switch connect.CodeOf(err) {
				case connect.CodeFailedPrecondition:
					refused.Add(1)
				default:
					if err != nil {
						errs <- err
						return
					}
					granted.Add(1)
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// 100 USDT hold ten holds of 10 and refuse the other two, per account.
	if granted.Load() != accounts*10 || refused.Load() != accounts*2 {
		t.Errorf("granted %d, refused %d; want %d and %d", granted.Load(), refused.Load(), accounts*10, accounts*2)
	}
	for a := range accounts {
		if got := balance(t, w.client, fmt.Sprintf("acct%d", a), "USDT"); got != "0.00000000/100.00000000" {
			t.Errorf("acct%d = %s, want all of it held", a, got)
		}
	}
	before := stateOf(t, w)
	var applied uint64
	w.svc.st.read(func(b *Book) { applied = b.Applied() })
	if want := uint64(accounts + accounts*10); applied != want {
		t.Errorf("book covers the journal up to %d, want %d (every entry, in order)", applied, want)
	}
	w.stop()
	if after := stateOf(t, e.start(cfg)); after != before {
		t.Errorf("rebuilt state differs:\n%s\n%s", before, after)
	}
}

// A duplicate-order reject (a copy of a submit the engine already had)
// releases nothing: the hold belongs to the original order.
func TestDuplicateOrderRejectKeepsTheHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := e.start(testConfig())
	eng := newEngine(t, e.js)
	deposit(t, w.client, "d1", "kate", "USDT", "1000")
	hold(t, w.client, "K1", "kate", "USDT", "400")
	hold(t, w.client, "K2", "kate", "USDT", "100")
	eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Rejected{Rejected: &enginev1.OrderRejected{
		OrderId: "K1", AccountId: "kate", Reason: commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER}}})
	settled(t, w, eng.cancel("K2", "kate", "0")) // a later event: the reject was handled before it
	if got := balance(t, w.client, "kate", "USDT"); got != "600.00000000/400.00000000" {
		t.Errorf("after a duplicate reject kate USDT %s, want the hold kept (600/400)", got)
	}
	// A real reject releases it.
	settled(t, w, eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Rejected{Rejected: &enginev1.OrderRejected{
		OrderId: "K1", AccountId: "kate", Reason: commonv1.RejectReason_REJECT_REASON_POST_ONLY_WOULD_TAKE}}}))
	if got := balance(t, w.client, "kate", "USDT"); got != "1000.00000000/0.00000000" {
		t.Errorf("after a real reject kate USDT %s, want it released", got)
	}
}

// TestSettlementRuns settles the engine events stored while the wallet was
// down in a few journal writes, not one per event, and a run stops before
// an event that cannot settle: that one goes to the dead-letter topic on
// its own delivery, and the events around it settle.
func TestSettlementRuns(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	const batch = 10
	cfg.SettleBatch = batch
	w := e.start(cfg)
	deposit(t, w.client, "d1", "alice", "USDT", "100000")
	deposit(t, w.client, "d2", "bob", "BTC", "10")
	const trades = 30
	for i := range trades {
		hold(t, w.client, fmt.Sprint("A", i), "alice", "USDT", "1000")
		hold(t, w.client, fmt.Sprint("B", i), "bob", "BTC", "0.1")
	}
	hold(t, w.client, "P", "alice", "USDT", "1")
	w.stop()

	eng := newEngine(t, e.js)
	var last uint64
	for i := range trades {
		if i == 5 { // costs more than its hold: refused, dead-lettered
			eng.trade("9000.00", "1.00000", "P", "alice", commonv1.Side_SIDE_BUY, "0", fmt.Sprint("B", i), "bob", "0")
		}
		last = eng.trade("9000.00", "0.10000", fmt.Sprint("A", i), "alice", commonv1.Side_SIDE_BUY, "0", fmt.Sprint("B", i), "bob", "0")
	}
	w = e.start(cfg)
	before := w.svc.st.writes.Load()
	settled(t, w, last)
	if n := w.svc.st.writes.Load() - before; n > 2*trades/batch+2 {
		t.Errorf("%d events settled in %d journal writes, want runs of up to %d", trades+1, n, batch)
	}
	dlq, err := e.js.Stream(t.Context(), streams.StreamName(streams.DLQTopic(streams.TopicEngineEvent)))
	if err != nil {
		t.Fatal(err)
	}
	polltest.True(t, "the refused trade dead-lettered", func() bool {
		info, err := dlq.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	})
	for _, c := range []struct{ acct, asset, want string }{
		{"alice", "USDT", "72999.00000000/1.00000000"}, {"alice", "BTC", "3.00000000/0.00000000"},
		{"bob", "BTC", "7.00000000/0.00000000"}, {"bob", "USDT", "27000.00000000/0.00000000"},
	} {
		if got := balance(t, w.client, c.acct, c.asset); got != c.want {
			t.Errorf("%s %s = %s, want %s", c.acct, c.asset, got, c.want)
		}
	}
}

// TestSnapshotsPruneOldRecords: a snapshot leaves out the closed holds and
// the transfer and release records older than RecordHorizon, keeps open
// holds and recent records, and the state rebuilt from it and the journal
// after it has every account's balances and open holds exactly as the
// unpruned state.
func TestSnapshotsPruneOldRecords(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	e.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	cfg := testConfig()
	cfg.SnapshotEvery = 1_000_000 // only when asked
	cfg.RecordHorizon = time.Hour
	w := e.start(cfg)
	eng := newEngine(t, e.js)
	settlementScenario(t, w, eng) // A1, B1, D1 closed by trades, C1 by a cancel
	advance(2 * time.Hour)
	deposit(t, w.client, "d5", "erin", "USDT", "100")
	hold(t, w.client, "E2", "erin", "USDT", "40") // open, and recent
	if err := w.svc.Snapshot(t.Context()); err != nil {
		t.Fatal(err)
	}
	// After the snapshot: more of the journal to replay on top of it.
	seq := eng.cancel("E2", "erin", "0")
	settled(t, w, seq)
	deposit(t, w.client, "d6", "alice", "USDT", "7")
	unpruned := balancesOf(w)

	w.stop()
	w2 := e.start(cfg)
	if got := balancesOf(w2); got != unpruned {
		t.Errorf("rebuilt from the pruned snapshot:\n%s\nunpruned:\n%s", got, unpruned)
	}
	w2.svc.st.read(func(b *Book) {
		for _, id := range []string{"A1", "B1", "C1", "D1"} {
			for _, acct := range []string{"alice", "bob", "carol", "dave"} {
				if _, ok := b.Hold(acct, id); ok {
					t.Errorf("closed hold %s of %s kept past the horizon", id, acct)
				}
			}
		}
		if _, ok := b.Transfer("alice", "d1"); ok {
			t.Error("old transfer record kept past the horizon")
		}
		if _, ok := b.Transfer("erin", "d5"); !ok {
			t.Error("recent transfer record pruned")
		}
		if h, ok := b.Hold("erin", "E2"); !ok || h.Remaining != 0 {
			t.Errorf("hold E2 after the replay: %+v, %v", h, ok)
		}
	})
}

// balancesOf is every account's balances and journal position, as text.
func balancesOf(w *instance) string {
	var out strings.Builder
	w.svc.st.read(func(b *Book) {
		for _, bal := range b.Balances("") {
			seq, subj := b.AccountSeq(bal.Account)
			fmt.Fprintf(&out, "%s %s %d/%d rev %d (account at %d/%d)\n", bal.Account, bal.Asset, bal.Available, bal.Held, bal.Revision, seq, subj)
		}
	})
	return out.String()
}

// TestListHolds lists the open holds oldest first, filtered by account,
// reason and creation time, in pages; a closed hold is not listed.
func TestListHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var mu sync.Mutex
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	e.clock = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func() { mu.Lock(); now = now.Add(time.Minute); mu.Unlock() }
	w := e.start(testConfig())
	c := w.client
	deposit(t, c, "d1", "ann", "USDT", "100")
	deposit(t, c, "d2", "ben", "USDT", "100")
	for _, h := range []struct {
		id, acct string
		reason   walletv1.HoldReason
	}{{"o1", "ann", walletv1.HoldReason_HOLD_REASON_ORDER}, {"w1", "ann", walletv1.HoldReason_HOLD_REASON_WITHDRAWAL},
		{"o2", "ben", walletv1.HoldReason_HOLD_REASON_ORDER}, {"o3", "ann", walletv1.HoldReason_HOLD_REASON_ORDER}} {
		tick()
		if _, err := c.HoldBalance(t.Context(), &walletv1.HoldBalanceRequest{HoldId: h.id, AccountId: h.acct, Asset: "USDT", Amount: "1", Reason: h.reason}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.ReleaseHold(t.Context(), &walletv1.ReleaseHoldRequest{HoldId: "o3", AccountId: "ann"}); err != nil {
		t.Fatal(err)
	}
	ids := func(req *walletv1.ListHoldsRequest) []string {
		t.Helper()
		res, err := c.ListHolds(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range res.GetHolds() {
			out = append(out, h.GetHoldId())
		}
		return out
	}
	third := time.Date(2026, 12, 2, 9, 3, 0, 0, time.UTC) // o2's creation
	for _, tc := range []struct {
		name string
		req  *walletv1.ListHoldsRequest
		want []string
	}{
		{"all open, oldest first", &walletv1.ListHoldsRequest{}, []string{"o1", "w1", "o2"}},
		{"one account", &walletv1.ListHoldsRequest{AccountId: "ann"}, []string{"o1", "w1"}},
		{"order holds", &walletv1.ListHoldsRequest{Reason: walletv1.HoldReason_HOLD_REASON_ORDER}, []string{"o1", "o2"}},
		{"made before", &walletv1.ListHoldsRequest{CreatedBefore: timestamppb.New(third)}, []string{"o1", "w1"}},
	} {
		if got := ids(tc.req); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	first, err := c.ListHolds(t.Context(), &walletv1.ListHoldsRequest{Page: &commonv1.PageRequest{PageSize: 2}})
	if err != nil {
		t.Fatal(err)
	}
	rest := ids(&walletv1.ListHoldsRequest{Page: &commonv1.PageRequest{PageSize: 2, PageToken: first.GetPage().GetNextPageToken()}})
	if len(first.GetHolds()) != 2 || !slices.Equal(rest, []string{"o2"}) {
		t.Errorf("pages: %v then %v", first.GetHolds(), rest)
	}
	_, err = c.ListHolds(t.Context(), &walletv1.ListHoldsRequest{Reason: 99})
	codeOf(t, err, connect.CodeInvalidArgument)
}
