package order_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
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
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/internal/paging"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/wallet"
	"github.com/tradex-mesh/tradex/streams"
)

const waitTimeout = 10 * time.Second

// env is an embedded JetStream with the real metadata and wallet services
// and an instrument cache, shared by the order services of a test.
type env struct {
	t        *testing.T
	js       jetstream.JetStream
	metadata metadatav1connectHandler
	cache    *instruments.Cache
	wallet   walletv1connect.WalletServiceHandler
	// clock, when set, is the order service's clock.
	clock func() time.Time
}

// metadatav1connectHandler is the part of the metadata handler tests use.
type metadatav1connectHandler interface {
	GetInstrument(context.Context, *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error)
	ListInstruments(context.Context, *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error)
	HaltInstrument(context.Context, *metadatav1.HaltInstrumentRequest) (*metadatav1.HaltInstrumentResponse, error)
	UpdateInstrument(context.Context, *metadatav1.UpdateInstrumentRequest) (*metadatav1.UpdateInstrumentResponse, error)
}

// runUntilReady runs run until the test ends and waits for ready.
func runUntilReady(t *testing.T, what string, run func(context.Context) error, ready <-chan struct{}) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: Run: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s: Run ended before ready: %v", what, err)
	case <-time.After(waitTimeout):
		t.Fatalf("%s not ready", what)
	}
	return stop
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s := embeddedtest.New(t)
	js := s.JetStream()
	if err := streams.EnsureStreams(t.Context(), js, streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	mdMesh := streams.NewClient(js, streams.DefaultCatalog())
	md, err := metadata.New(metadata.Default(), metadata.Deps{
		Streams: mdMesh, Publisher: mdMesh.Publisher(streams.WithSource("tradex/metadata")),
	})
	if err != nil {
		t.Fatal(err)
	}
	runUntilReady(t, "metadata", md.Run, md.Ready())
	cache, err := instruments.New(t.Context(), md.InProcess(), streams.NewClient(js, streams.DefaultCatalog()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cache.Close(context.WithoutCancel(t.Context())) })
	wcfg := wallet.Default()
	wcfg.SnapshotEvery = 0
	walletMesh := streams.NewClient(js, streams.DefaultCatalog())
	w, err := wallet.New(wcfg, wallet.Deps{
		Streams: walletMesh, Publisher: walletMesh.Publisher(streams.WithSource("tradex/wallet")),
		Instruments: cache,
	})
	if err != nil {
		t.Fatal(err)
	}
	runUntilReady(t, "wallet", w.Run, w.Ready())
	return &env{t: t, js: js, metadata: md.InProcess(), cache: cache, wallet: w.InProcess()}
}

// instance is a running order service and a Connect client of it over HTTP.
type instance struct {
	client orderv1connect.OrderServiceClient
	stop   func()
}

func (e *env) start(tweaks ...func(*order.Config)) *instance {
	e.t.Helper()
	cfg := order.Default()
	cfg.Concurrency = 2
	cfg.FundingEvery = 0 // funding_test.go turns it on
	for _, tweak := range tweaks {
		tweak(&cfg)
	}
	mesh := streams.NewClient(e.js, streams.DefaultCatalog())
	svc, err := order.New(cfg, order.Deps{
		Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/order")),
		Instruments: e.cache, Wallet: e.wallet, Clock: e.clock,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	stop := runUntilReady(e.t, "order", svc.Run, svc.Ready())
	_, h := svc.Handler()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	e.t.Cleanup(srv.Close)
	return &instance{client: orderv1connect.NewOrderServiceClient(srv.Client(), srv.URL), stop: func() { stop(); srv.Close() }}
}

func (e *env) deposit(acct, asset, amount string) {
	e.t.Helper()
	_, err := e.wallet.Deposit(e.t.Context(), &walletv1.DepositRequest{
		TransferId: "dep-" + acct + "-" + asset + "-" + strings.ReplaceAll(amount, ".", "_"), AccountId: acct, Asset: asset, Amount: amount})
	if err != nil {
		e.t.Fatal(err)
	}
}

// balance is "available/held" of an account's asset, trimmed.
func (e *env) balance(acct, asset string) string {
	e.t.Helper()
	res, err := e.wallet.GetBalance(e.t.Context(), &walletv1.GetBalanceRequest{AccountId: acct, Asset: asset})
	if err != nil {
		e.t.Fatal(err)
	}
	return trim(res.GetBalance().GetAvailable()) + "/" + trim(res.GetBalance().GetHeld())
}

func trim(s string) string {
	v, err := decimal.Parse(s, 8)
	if err != nil {
		return s
	}
	return decimal.FormatTrim(v, 8)
}

// commands returns every command on engine.order.v1 with its message id.
func (e *env) commands() map[string]*enginev1.OrderCommand {
	e.t.Helper()
	st, err := e.js.Stream(e.t.Context(), streams.StreamName(streams.TopicOrderCommand))
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := st.Info(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]*enginev1.OrderCommand{}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := st.GetMsg(e.t.Context(), seq)
		if err != nil {
			e.t.Fatal(err)
		}
		var c enginev1.OrderCommand
		if err := proto.Unmarshal(m.Data, &c); err != nil {
			e.t.Fatal(err)
		}
		out[m.Header.Get(streams.HeaderMsgID)] = &c
	}
	return out
}

// engine publishes hand-built engine events for one instrument.
type engine struct {
	t        *testing.T
	pub      *streams.Publisher
	commands *streams.Client
	sym      string
	seq      uint64
}

func (e *env) engine(sym string) *engine {
	return &engine{t: e.t, pub: streams.NewPublisher(e.js, streams.DefaultCatalog(), streams.WithSource("test/engine")),
		commands: streams.NewClient(e.js, streams.DefaultCatalog()), sym: sym}
}

// inputOf is the stream sequence of the submit command of order id, the
// input sequence of the events the engine makes of it (the order service
// finds an order's record there until it wrote one).
func (g *engine) inputOf(id string) uint64 {
	g.t.Helper()
	cmds, err := g.commands.Range(g.t.Context(), streams.TopicOrderCommand, g.sym, 1, 10_000)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, c := range cmds {
		if c.Header.Get(streams.HeaderMsgID) == id {
			return c.Sequence
		}
	}
	g.t.Fatalf("no submit command of order %s", id)
	return 0
}

func (g *engine) publish(ev *enginev1.EngineEvent) {
	g.t.Helper()
	if ev.GetSequence() == 0 {
		g.seq++
		ev.Sequence = g.seq
	}
	ev.InstrumentId = g.sym
	ev.EventId = fmt.Sprintf("%s:%d:0", g.sym, ev.GetSequence())
	ev.EngineTime = timestamppb.Now()
	if _, err := g.pub.Publish(g.t.Context(), streams.TopicEngineEvent, g.sym, ev, streams.WithMsgID(ev.GetEventId())); err != nil {
		g.t.Fatal(err)
	}
}

func (g *engine) accepted(id, acct string) {
	g.publish(&enginev1.EngineEvent{InputSequence: g.inputOf(id), Event: &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: id, AccountId: acct}}})
}

func (g *engine) trade(price, qty, taker, takerAcct, takerLeft, maker, makerAcct, makerLeft string, takerSide commonv1.Side) {
	g.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
		Price: price, Quantity: qty, TakerOrderId: taker, TakerAccountId: takerAcct, TakerSide: takerSide,
		TakerRemainingQuantity: takerLeft, MakerOrderId: maker, MakerAccountId: makerAcct,
		MakerSide: 3 - takerSide, MakerRemainingQuantity: makerLeft,
	}}})
}

func (g *engine) cancelled(id, acct string) {
	g.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Cancelled{Cancelled: &enginev1.OrderCancelled{
		OrderId: id, AccountId: acct, Reason: commonv1.CancelReason_CANCEL_REASON_USER_REQUESTED}}})
}

func codeOf(t *testing.T, err error, want connect.Code, wantText string) {
	t.Helper()
	if got := connect.CodeOf(err); err == nil || got != want {
		t.Fatalf("err = %v (%v), want %v", err, got, want)
	}
	if !strings.Contains(err.Error(), wantText) {
		t.Fatalf("err = %v, want it to mention %q", err, wantText)
	}
}

func limit(acct, cid, sym string, side commonv1.Side, qty, price string) *orderv1.PlaceOrderRequest {
	return &orderv1.PlaceOrderRequest{AccountId: acct, ClientOrderId: cid, InstrumentId: sym, Side: side,
		Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: qty, Price: price}
}

func (in *instance) place(t *testing.T, req *orderv1.PlaceOrderRequest) *orderv1.PlaceOrderResponse {
	t.Helper()
	res, err := in.client.PlaceOrder(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (in *instance) get(t *testing.T, id string) *orderv1.Order {
	t.Helper()
	res, err := in.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
	if err != nil {
		t.Fatal(err)
	}
	return res.GetOrder()
}

// waitOrder polls GetOrder until it finds the order and check passes.
func (in *instance) waitOrder(t *testing.T, id string, check func(*orderv1.Order) error) *orderv1.Order {
	t.Helper()
	var o *orderv1.Order
	polltest.Until(t, "order "+id, func() error {
		res, err := in.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: id})
		if err != nil { // not there yet (an order recovered from engine events)
			return err
		}
		o = res.GetOrder()
		return check(o)
	})
	return o
}

func status(want commonv1.OrderStatus, filled, remaining string) func(*orderv1.Order) error {
	return func(o *orderv1.Order) error {
		if o.GetStatus() != want || o.GetFilledQuantity() != filled || o.GetRemainingQuantity() != remaining {
			return fmt.Errorf("status %v filled %s remaining %s, want %v %s %s", o.GetStatus(), o.GetFilledQuantity(), o.GetRemainingQuantity(), want, filled, remaining)
		}
		return nil
	}
}

const (
	buy  = commonv1.Side_SIDE_BUY
	sell = commonv1.Side_SIDE_SELL
)

func TestPlaceOrderHoldsAndSubmits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("alice", "USDT", "1000")
	e.deposit("bob", "BTC", "1")

	res := svc.place(t, limit("alice", "a-1", "BTCUSDT", buy, "0.01", "50000.5"))
	o := res.GetOrder()
	if o.GetOrderId() == "" || res.GetReplayed() || o.GetStatus() != commonv1.OrderStatus_ORDER_STATUS_NEW ||
		o.GetTimeInForce() != commonv1.TimeInForce_TIME_IN_FORCE_GTC || o.GetPrice() != "50000.50" ||
		o.GetQuantity() != "0.01000" || o.GetRemainingQuantity() != "0.01000" || o.GetClientOrderId() != "a-1" {
		t.Fatalf("placed %v", o)
	}
	if got := e.balance("alice", "USDT"); got != "499.995/500.005" {
		t.Fatalf("alice USDT %s, want 499.995/500.005 held for 0.01 at 50000.5", got)
	}
	sellRes := svc.place(t, limit("bob", "", "BTCUSDT", sell, "0.2", "60000"))
	if got := e.balance("bob", "BTC"); got != "0.8/0.2" {
		t.Fatalf("bob BTC %s, want 0.8/0.2", got)
	}
	cmds := e.commands()
	sub := cmds[o.GetOrderId()].GetSubmit()
	if len(cmds) != 2 || cmds[o.GetOrderId()].GetCommandId() != o.GetOrderId() || sub.GetPrice() != "50000.50" ||
		sub.GetQuantity() != "0.01000" || sub.GetPriceScale() != 2 || sub.GetQuantityScale() != 5 ||
		sub.GetAccountId() != "alice" || sub.GetTimeInForce() != commonv1.TimeInForce_TIME_IN_FORCE_GTC {
		t.Fatalf("commands %v", cmds)
	}
	if sellRes.GetOrder().GetOrderId() <= o.GetOrderId() {
		t.Fatalf("ids not sortable: %s then %s", o.GetOrderId(), sellRes.GetOrder().GetOrderId())
	}
	byClient, err := svc.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{AccountId: "alice", ClientOrderId: "a-1"})
	if err != nil || byClient.GetOrder().GetOrderId() != o.GetOrderId() {
		t.Fatalf("GetOrder by client id: %v, %v", byClient, err)
	}
	_, err = svc.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{AccountId: "bob", OrderId: o.GetOrderId()})
	codeOf(t, err, connect.CodeNotFound, "order not found")
	_, err = svc.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "nope"})
	codeOf(t, err, connect.CodeNotFound, "order not found")
	_, err = svc.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{ClientOrderId: "a-1"})
	codeOf(t, err, connect.CodeInvalidArgument, "account_id")

	// A market sell needs no price; a market buy holds its protection bound.
	mkt := svc.place(t, &orderv1.PlaceOrderRequest{AccountId: "bob", InstrumentId: "BTCUSDT", Side: sell,
		Type: commonv1.OrderType_ORDER_TYPE_MARKET, Quantity: "0.1"}).GetOrder()
	if mkt.GetTimeInForce() != commonv1.TimeInForce_TIME_IN_FORCE_IOC || mkt.GetPrice() != "" {
		t.Fatalf("market sell %v", mkt)
	}
	svc.place(t, &orderv1.PlaceOrderRequest{AccountId: "alice", InstrumentId: "BTCUSDT", Side: buy,
		Type: commonv1.OrderType_ORDER_TYPE_MARKET, Quantity: "0.001", Price: "70000"})
	if got := e.balance("alice", "USDT"); got != "429.995/570.005" {
		t.Fatalf("alice USDT %s after a market buy bounded at 70000", got)
	}
}

func TestPlaceOrderErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("alice", "USDT", "1000000")
	if _, err := e.metadata.HaltInstrument(t.Context(), &metadatav1.HaltInstrumentRequest{Symbol: "ETHUSDT", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "ETHUSDT halted in the cache", func() error {
		r, err := e.cache.Rules(t.Context(), "ETHUSDT")
		if err != nil || r.Trading {
			return fmt.Errorf("trading %v: %w", r.Trading, err)
		}
		return nil
	})
	ok := func() *orderv1.PlaceOrderRequest { return limit("alice", "", "BTCUSDT", buy, "0.01", "50000") }
	with := func(f func(r *orderv1.PlaceOrderRequest)) *orderv1.PlaceOrderRequest { r := ok(); f(r); return r }
	cases := []struct {
		name string
		req  *orderv1.PlaceOrderRequest
		code connect.Code
		text string
	}{
		{"no account", with(func(r *orderv1.PlaceOrderRequest) { r.AccountId = "" }), connect.CodeInvalidArgument, "account_id"},
		{"bad client id", with(func(r *orderv1.PlaceOrderRequest) { r.ClientOrderId = "a b" }), connect.CodeInvalidArgument, "client_order_id"},
		{"unknown instrument", with(func(r *orderv1.PlaceOrderRequest) { r.InstrumentId = "DOGEUSDT" }), connect.CodeNotFound, "instrument not found"},
		{"halted", with(func(r *orderv1.PlaceOrderRequest) { r.InstrumentId = "ETHUSDT" }), connect.CodeFailedPrecondition, "halted"},
		{"reduce-only spot", with(func(r *orderv1.PlaceOrderRequest) { r.ReduceOnly = true }), connect.CodeInvalidArgument, "reduce_only: only a perpetual's"},
		{"perpetual market sell without a price", with(func(r *orderv1.PlaceOrderRequest) {
			r.InstrumentId, r.Side, r.Type, r.Price = "BTCUSDT-PERP", sell, commonv1.OrderType_ORDER_TYPE_MARKET, ""
		}), connect.CodeInvalidArgument, "price: a perpetual's market order needs a price"},
		{"off tick", with(func(r *orderv1.PlaceOrderRequest) { r.Price = "50000.001" }), connect.CodeInvalidArgument, "price"},
		{"tick size", with(func(r *orderv1.PlaceOrderRequest) { r.Price = "0" }), connect.CodeInvalidArgument, "price"},
		{"off lot", with(func(r *orderv1.PlaceOrderRequest) { r.Quantity = "0.000001" }), connect.CodeInvalidArgument, "quantity"},
		{"zero quantity", with(func(r *orderv1.PlaceOrderRequest) { r.Quantity = "0" }), connect.CodeInvalidArgument, "quantity"},
		{"min notional", with(func(r *orderv1.PlaceOrderRequest) { r.Quantity = "0.00001"; r.Price = "100" }), connect.CodeInvalidArgument, "order value"},
		{"no side", with(func(r *orderv1.PlaceOrderRequest) { r.Side = 0 }), connect.CodeInvalidArgument, "side"},
		{"no type", with(func(r *orderv1.PlaceOrderRequest) { r.Type = 7 }), connect.CodeInvalidArgument, "type"},
		{"bad tif", with(func(r *orderv1.PlaceOrderRequest) { r.TimeInForce = 9 }), connect.CodeInvalidArgument, "time_in_force"},
		{"bad stp", with(func(r *orderv1.PlaceOrderRequest) { r.SelfTradePrevention = 9 }), connect.CodeInvalidArgument, "self_trade_prevention"},
		{"limit without price", with(func(r *orderv1.PlaceOrderRequest) { r.Price = "" }), connect.CodeInvalidArgument, "price"},
		{"market buy without bound", with(func(r *orderv1.PlaceOrderRequest) { r.Type = commonv1.OrderType_ORDER_TYPE_MARKET; r.Price = "" }), connect.CodeInvalidArgument, "price"},
		{"post-only IOC", with(func(r *orderv1.PlaceOrderRequest) {
			r.PostOnly = true
			r.TimeInForce = commonv1.TimeInForce_TIME_IN_FORCE_IOC
		}), connect.CodeInvalidArgument, "post_only"},
		{"post-only market", with(func(r *orderv1.PlaceOrderRequest) { r.PostOnly = true; r.Type = commonv1.OrderType_ORDER_TYPE_MARKET }), connect.CodeInvalidArgument, "post_only"},
		{"insufficient funds", with(func(r *orderv1.PlaceOrderRequest) { r.Quantity = "100" }), connect.CodeFailedPrecondition, "insufficient funds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := svc.client.PlaceOrder(t.Context(), c.req)
			codeOf(t, err, c.code, c.text)
		})
	}
	if n := len(e.commands()); n != 0 {
		t.Fatalf("%d commands published by refused orders", n)
	}
	if got := e.balance("alice", "USDT"); got != "1000000/0" {
		t.Fatalf("alice USDT %s after refused orders", got)
	}
}

func TestInsufficientFundsPublishesAndHoldsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("carol", "USDT", "100")
	_, err := svc.client.PlaceOrder(t.Context(), limit("carol", "c-1", "BTCUSDT", buy, "0.01", "50000"))
	codeOf(t, err, connect.CodeFailedPrecondition, "insufficient funds")
	if n := len(e.commands()); n != 0 {
		t.Fatalf("%d commands published", n)
	}
	if got := e.balance("carol", "USDT"); got != "100/0" {
		t.Fatalf("carol USDT %s, want 100/0", got)
	}
	res, err := svc.client.ListOrders(t.Context(), &orderv1.ListOrdersRequest{AccountId: "carol"})
	if err != nil || len(res.GetOrders()) != 0 {
		t.Fatalf("ListOrders %v, %v", res, err)
	}
	// The client order id was not used up: after a deposit it places.
	e.deposit("carol", "USDT", "400")
	placed := svc.place(t, limit("carol", "c-1", "BTCUSDT", buy, "0.01", "50000"))
	if placed.GetReplayed() || e.balance("carol", "USDT") != "0/500" {
		t.Fatalf("placed %v, balance %s", placed, e.balance("carol", "USDT"))
	}
}

func TestClientOrderIDReturnsTheFirstOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("dave", "USDT", "10000")
	req := limit("dave", "same.id-1", "BTCUSDT", buy, "0.01", "50000")

	var wg sync.WaitGroup
	ids := make([]string, 4)
	for i := range ids {
		wg.Go(func() {
			res, err := svc.client.PlaceOrder(t.Context(), req)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = res.GetOrder().GetOrderId()
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("concurrent requests placed different orders: %v", ids)
		}
	}
	again := svc.place(t, req)
	if !again.GetReplayed() || again.GetOrder().GetOrderId() != ids[0] {
		t.Fatalf("repeat %v", again)
	}
	if got := e.balance("dave", "USDT"); got != "9500/500" {
		t.Fatalf("dave USDT %s: held more than once", got)
	}
	if n := len(e.commands()); n != 1 {
		t.Fatalf("%d commands, want 1", n)
	}
	other := limit("dave", "same.id-1", "BTCUSDT", buy, "0.02", "50000")
	_, err := svc.client.PlaceOrder(t.Context(), other)
	codeOf(t, err, connect.CodeAlreadyExists, "client_order_id")

	// After a restart (and so beyond any duplicate window) the id still
	// names the first order.
	svc.stop()
	svc2 := e.start()
	res := svc2.place(t, req)
	if !res.GetReplayed() || res.GetOrder().GetOrderId() != ids[0] {
		t.Fatalf("after restart %v", res)
	}
	if n := len(e.commands()); n != 1 || e.balance("dave", "USDT") != "9500/500" {
		t.Fatalf("after restart: %d commands, balance %s", n, e.balance("dave", "USDT"))
	}
	// Another account may use the same client order id.
	e.deposit("erin", "BTC", "1")
	if res := svc2.place(t, limit("erin", "same.id-1", "BTCUSDT", sell, "0.01", "50000")); res.GetReplayed() {
		t.Fatalf("another account's order replayed: %v", res)
	}
}

func TestCancelOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("frank", "USDT", "1000")
	o := svc.place(t, limit("frank", "f-1", "BTCUSDT", buy, "0.01", "50000")).GetOrder()

	res, err := svc.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "frank", ClientOrderId: "f-1"})
	if err != nil || res.GetOrder().GetOrderId() != o.GetOrderId() {
		t.Fatalf("CancelOrder %v, %v", res, err)
	}
	cmd := e.commands()["cancel:"+o.GetOrderId()]
	if cmd.GetCommandId() != "cancel:"+o.GetOrderId() || cmd.GetCancel().GetOrderId() != o.GetOrderId() ||
		cmd.GetCancel().GetAccountId() != "frank" || cmd.GetInstrumentId() != "BTCUSDT" {
		t.Fatalf("cancel command %v", cmd)
	}
	_, err = svc.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "mallory", OrderId: o.GetOrderId()})
	codeOf(t, err, connect.CodeNotFound, "order not found")
	_, err = svc.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "frank", OrderId: "unknown"})
	codeOf(t, err, connect.CodeNotFound, "order not found")
	_, err = svc.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{OrderId: o.GetOrderId()})
	codeOf(t, err, connect.CodeInvalidArgument, "account_id")
	_, err = svc.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "frank"})
	codeOf(t, err, connect.CodeInvalidArgument, "order_id")

	// Once the engine confirmed, the order is final: a cancel returns it
	// unchanged and sends nothing.
	eng := e.engine("BTCUSDT")
	eng.accepted(o.GetOrderId(), "frank")
	eng.cancelled(o.GetOrderId(), "frank")
	svc.waitOrder(t, o.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_CANCELLED, "0.00000", "0.00000"))
	before := len(e.commands())
	res, err = svc.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "frank", OrderId: o.GetOrderId()})
	if err != nil || res.GetOrder().GetStatus() != commonv1.OrderStatus_ORDER_STATUS_CANCELLED ||
		res.GetOrder().GetCancelReason() != commonv1.CancelReason_CANCEL_REASON_USER_REQUESTED {
		t.Fatalf("cancel of a final order: %v, %v", res, err)
	}
	if after := len(e.commands()); after != before {
		t.Fatalf("cancel of a final order published: %d -> %d commands", before, after)
	}
	polltest.Until(t, "wallet released the hold", func() error {
		if got := e.balance("frank", "USDT"); got != "1000/0" {
			return fmt.Errorf("frank USDT %s", got)
		}
		return nil
	})
}

func TestEngineEventsUpdateOrders(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("gina", "USDT", "10000")
	e.deposit("hank", "BTC", "1")

	watch, err := svc.client.WatchOrders(t.Context(), &orderv1.WatchOrdersRequest{AccountId: "gina"})
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	next := func() *orderv1.WatchOrdersResponse {
		t.Helper()
		if !watch.Receive() {
			t.Fatalf("watch ended: %v", watch.Err())
		}
		return watch.Msg()
	}
	if m := next(); m.GetSnapshotEnd() == nil {
		t.Fatalf("first message %v, want snapshot end", m)
	}

	b := svc.place(t, limit("gina", "", "BTCUSDT", buy, "0.1", "50000")).GetOrder()
	s := svc.place(t, limit("hank", "", "BTCUSDT", sell, "0.04", "49000")).GetOrder()
	if u := next().GetUpdated(); u.GetOrderId() != b.GetOrderId() || u.GetStatus() != commonv1.OrderStatus_ORDER_STATUS_NEW {
		t.Fatalf("watch update %v, want the new buy", u)
	}

	eng := e.engine("BTCUSDT")
	eng.accepted(b.GetOrderId(), "gina")
	eng.accepted(s.GetOrderId(), "hank")
	eng.trade("50000.00", "0.04000", s.GetOrderId(), "hank", "0", b.GetOrderId(), "gina", "0.06000", sell)
	o := svc.waitOrder(t, b.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED, "0.04000", "0.06000"))
	if o.GetAveragePrice() != "50000.00" {
		t.Fatalf("average price %s", o.GetAveragePrice())
	}
	svc.waitOrder(t, s.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_FILLED, "0.04000", "0.00000"))

	// A redelivered event (same sequence) changes nothing.
	eng.publish(&enginev1.EngineEvent{Sequence: 3, Event: &enginev1.EngineEvent_Trade{Trade: &enginev1.Trade{
		Price: "50000.00", Quantity: "0.04000", TakerOrderId: s.GetOrderId(), TakerRemainingQuantity: "0",
		MakerOrderId: b.GetOrderId(), MakerRemainingQuantity: "0.06000"}}})

	s2 := svc.place(t, limit("hank", "", "BTCUSDT", sell, "0.06", "49000")).GetOrder()
	eng.accepted(s2.GetOrderId(), "hank")
	eng.trade("49990.00", "0.06000", s2.GetOrderId(), "hank", "0", b.GetOrderId(), "gina", "0", sell)
	o = svc.waitOrder(t, b.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_FILLED, "0.10000", "0.00000"))
	if o.GetAveragePrice() != "49994.00" {
		t.Fatalf("average price %s, want 49994.00", o.GetAveragePrice())
	}

	// The watch saw every change of gina's order, in order.
	var seen []string
	for len(seen) == 0 || seen[len(seen)-1] != "ORDER_STATUS_FILLED" {
		u := next().GetUpdated()
		if u.GetAccountId() != "gina" {
			t.Fatalf("watch of gina sent %v", u)
		}
		seen = append(seen, u.GetStatus().String())
	}
	if strings.Join(seen, ",") != "ORDER_STATUS_NEW,ORDER_STATUS_PARTIALLY_FILLED,ORDER_STATUS_FILLED" {
		t.Fatalf("watch statuses %v", seen)
	}

	// A rejected and an expired order.
	r := svc.place(t, limit("gina", "", "BTCUSDT", buy, "0.01", "50000")).GetOrder()
	eng.publish(&enginev1.EngineEvent{InputSequence: eng.inputOf(r.GetOrderId()), Event: &enginev1.EngineEvent_Rejected{Rejected: &enginev1.OrderRejected{
		OrderId: r.GetOrderId(), AccountId: "gina", Reason: commonv1.RejectReason_REJECT_REASON_POST_ONLY_WOULD_TAKE, Message: "would take"}}})
	o = svc.waitOrder(t, r.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_REJECTED, "0.00000", "0.00000"))
	if o.GetRejectReason() != commonv1.RejectReason_REJECT_REASON_POST_ONLY_WOULD_TAKE || o.GetStatusMessage() != "would take" {
		t.Fatalf("rejected %v", o)
	}
	x := svc.place(t, &orderv1.PlaceOrderRequest{AccountId: "gina", InstrumentId: "BTCUSDT", Side: buy,
		Type: commonv1.OrderType_ORDER_TYPE_LIMIT, TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_FOK, Quantity: "0.01", Price: "50000"}).GetOrder()
	eng.accepted(x.GetOrderId(), "gina")
	eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Expired{Expired: &enginev1.OrderExpired{
		OrderId: x.GetOrderId(), AccountId: "gina", Reason: commonv1.ExpireReason_EXPIRE_REASON_FILL_OR_KILL}}})
	svc.waitOrder(t, x.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_EXPIRED, "0.00000", "0.00000"))

	// ListOrders filters by account, instrument and status, newest first.
	list := func(req *orderv1.ListOrdersRequest) []string {
		t.Helper()
		res, err := svc.client.ListOrders(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, o := range res.GetOrders() {
			ids = append(ids, o.GetOrderId())
		}
		return ids
	}
	if got := list(&orderv1.ListOrdersRequest{AccountId: "gina"}); strings.Join(got, ",") != strings.Join([]string{x.GetOrderId(), r.GetOrderId(), b.GetOrderId()}, ",") {
		t.Fatalf("gina's orders %v", got)
	}
	if got := list(&orderv1.ListOrdersRequest{AccountId: "hank", Statuses: []commonv1.OrderStatus{commonv1.OrderStatus_ORDER_STATUS_FILLED}}); len(got) != 2 {
		t.Fatalf("hank's filled orders %v", got)
	}
	if got := list(&orderv1.ListOrdersRequest{InstrumentId: "ETHUSDT"}); len(got) != 0 {
		t.Fatalf("ETHUSDT orders %v", got)
	}
	var paged []string
	page := &commonv1.PageRequest{PageSize: 2}
	for {
		res, err := svc.client.ListOrders(t.Context(), &orderv1.ListOrdersRequest{Page: page})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.GetOrders() {
			paged = append(paged, o.GetOrderId())
		}
		if res.GetPage().GetNextPageToken() == "" {
			break
		}
		page = &commonv1.PageRequest{PageSize: 2, PageToken: res.GetPage().GetNextPageToken()}
	}
	if all := list(&orderv1.ListOrdersRequest{}); len(paged) != 5 || strings.Join(paged, ",") != strings.Join(all, ",") {
		t.Fatalf("paged %v, all %v", paged, all)
	}
	_, err = svc.client.ListOrders(t.Context(), &orderv1.ListOrdersRequest{Page: &commonv1.PageRequest{PageSize: -1}})
	codeOf(t, err, connect.CodeInvalidArgument, "page.page_size")
	for _, token := range []string{"not a token!", b.GetOrderId(), paging.Token("balances", b.GetOrderId()), paging.Token("orders", "a.b")} {
		_, err = svc.client.ListOrders(t.Context(), &orderv1.ListOrdersRequest{Page: &commonv1.PageRequest{PageSize: 2, PageToken: token}})
		codeOf(t, err, connect.CodeInvalidArgument, "page.page_token")
	}

	// After a restart the orders are all there and a new watch starts with
	// the working ones; the old watch ends with Unavailable.
	svc.stop()
	for watch.Receive() {
	}
	if connect.CodeOf(watch.Err()) != connect.CodeUnavailable {
		t.Fatalf("watch after stop: %v", watch.Err())
	}
	svc2 := e.start()
	if got := svc2.get(t, b.GetOrderId()); got.GetStatus() != commonv1.OrderStatus_ORDER_STATUS_FILLED {
		t.Fatalf("after restart %v", got)
	}
	open := svc2.place(t, limit("gina", "", "BTCUSDT", buy, "0.01", "50000")).GetOrder()
	w2, err := svc2.client.WatchOrders(t.Context(), &orderv1.WatchOrdersRequest{InstrumentId: "BTCUSDT"})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	if !w2.Receive() || w2.Msg().GetCurrent().GetOrderId() != open.GetOrderId() {
		t.Fatalf("first of the watch %v, %v; want the open order", w2.Msg(), w2.Err())
	}
	if !w2.Receive() || w2.Msg().GetSnapshotEnd() == nil {
		t.Fatalf("second of the watch %v, %v; want snapshot end", w2.Msg(), w2.Err())
	}
}

func TestOrderRecoveredFromItsCommand(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	// A submit stored by an order service that died before storing the
	// order: the engine's events bring the order back from the command.
	pub := streams.NewPublisher(e.js, streams.DefaultCatalog())
	cmd := &enginev1.OrderCommand{CommandId: "0000000000000001lost", InstrumentId: "BTCUSDT", SentAt: timestamppb.Now(),
		Command: &enginev1.OrderCommand_Submit{Submit: &enginev1.SubmitOrder{
			OrderId: "0000000000000001lost", AccountId: "ivan", Side: buy, Type: commonv1.OrderType_ORDER_TYPE_LIMIT,
			TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_GTC, Price: "50000.00", Quantity: "0.01000", PriceScale: 2, QuantityScale: 5}}}
	seq, err := pub.Publish(t.Context(), streams.TopicOrderCommand, "BTCUSDT", cmd,
		streams.WithMsgID(cmd.GetCommandId()), streams.WithHeader(order.HeaderClientOrderID, "lost-1"))
	if err != nil {
		t.Fatal(err)
	}
	e.engine("BTCUSDT").publish(&enginev1.EngineEvent{InputSequence: seq, Event: &enginev1.EngineEvent_Accepted{
		Accepted: &enginev1.OrderAccepted{OrderId: cmd.GetCommandId(), AccountId: "ivan"}}})
	o := svc.waitOrder(t, cmd.GetCommandId(), status(commonv1.OrderStatus_ORDER_STATUS_NEW, "0.00000", "0.01000"))
	if o.GetClientOrderId() != "lost-1" || o.GetAccountId() != "ivan" || o.GetPrice() != "50000.00" {
		t.Fatalf("recovered %v", o)
	}
}

func TestUnavailableBeforeRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mesh := streams.NewClient(e.js, streams.DefaultCatalog())
	svc, err := order.New(order.Default(), order.Deps{
		Streams: mesh, Publisher: mesh.Publisher(), Instruments: e.cache, Wallet: e.wallet,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.InProcess().GetOrder(t.Context(), &orderv1.GetOrderRequest{OrderId: "x"})
	codeOf(t, err, connect.CodeUnavailable, "unavailable")
	_, err = svc.InProcess().PlaceOrder(t.Context(), limit("a", "", "BTCUSDT", buy, "1", "1"))
	codeOf(t, err, connect.CodeUnavailable, "unavailable")
	if _, err := order.New(order.Default(), order.Deps{Streams: mesh}); err == nil {
		t.Fatal("New without a publisher succeeded")
	}
	if _, err := order.New(order.Default(), order.Deps{Publisher: mesh.Publisher(), Instruments: e.cache, Wallet: e.wallet}); err == nil {
		t.Fatal("New without Streams succeeded")
	}
	unknown := order.Default()
	unknown.Bucket = "tradex_no_such_store"
	if _, err := order.New(unknown, order.Deps{Streams: mesh, Publisher: mesh.Publisher(), Instruments: e.cache, Wallet: e.wallet}); !errors.Is(err, streams.ErrUnknownStore) {
		t.Fatalf("New with a bucket the catalog does not list: %v, want ErrUnknownStore", err)
	}
	unknown.Bucket = streams.StoreWalletSnapshots
	if _, err := order.New(unknown, order.Deps{Streams: mesh, Publisher: mesh.Publisher(), Instruments: e.cache, Wallet: e.wallet}); !errors.Is(err, streams.ErrInvalidConfig) {
		t.Fatalf("New with an object store for a bucket: %v, want ErrInvalidConfig", err)
	}
}

// A submit whose publish fails for want of the broker may have been stored
// (ack lost): the hold and the client order id are kept, never released,
// and the retry with the same client order id resumes the same order id
// with the same hold.
func TestUnavailablePublishKeepsTheHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("ivan", "USDT", "1000")
	commands := streams.StreamName(streams.TopicOrderCommand)
	if err := e.js.DeleteStream(t.Context(), commands); err != nil { // nobody answers the publish
		t.Fatal(err)
	}
	_, err := svc.client.PlaceOrder(t.Context(), limit("ivan", "i-1", "BTCUSDT", buy, "0.01", "50000"))
	codeOf(t, err, connect.CodeUnavailable, "")
	if got := e.balance("ivan", "USDT"); got != "500/500" {
		t.Fatalf("after the unavailable publish ivan USDT %s, want the hold kept (500/500)", got)
	}
	if err := streams.EnsureStreams(t.Context(), e.js, streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	res := svc.place(t, limit("ivan", "i-1", "BTCUSDT", buy, "0.01", "50000"))
	if !res.GetReplayed() {
		t.Errorf("retry with the same client order id not a replay: %v", res)
	}
	if cmd := e.commands()[res.GetOrder().GetOrderId()]; cmd.GetSubmit().GetOrderId() != res.GetOrder().GetOrderId() {
		t.Errorf("submit of %s not on the stream: %v", res.GetOrder().GetOrderId(), e.commands())
	}
	if got := e.balance("ivan", "USDT"); got != "500/500" {
		t.Errorf("after the retry ivan USDT %s, want one hold (500/500)", got)
	}
}

// The engine rejects a copy of a submit it already executed (a retry after
// the duplicate window) as a duplicate order: the original order is what
// its own events made it, and its hold stays.
func TestDuplicateOrderRejectLeavesTheOrderAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("jane", "USDT", "1000")
	o := svc.place(t, limit("jane", "j-1", "BTCUSDT", buy, "0.01", "50000")).GetOrder()
	eng := e.engine("BTCUSDT")
	eng.accepted(o.GetOrderId(), "jane")
	eng.publish(&enginev1.EngineEvent{Event: &enginev1.EngineEvent_Rejected{Rejected: &enginev1.OrderRejected{
		OrderId: o.GetOrderId(), AccountId: "jane", Reason: commonv1.RejectReason_REJECT_REASON_DUPLICATE_ORDER}}})
	eng.cancelled(o.GetOrderId(), "jane") // a later event, to know the reject was applied (skipped) before it
	svc.waitOrder(t, o.GetOrderId(), status(commonv1.OrderStatus_ORDER_STATUS_CANCELLED, "0.00000", "0.00000"))
	got, err := svc.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{AccountId: "jane", OrderId: o.GetOrderId()})
	if err != nil || got.GetOrder().GetRejectReason() != commonv1.RejectReason_REJECT_REASON_UNSPECIFIED {
		t.Errorf("order after a duplicate reject: %v, %v; want no reject reason", got, err)
	}
}

// An order PlaceOrder acknowledged is there for every instance at once,
// before the engine's events make its record: GetOrder and CancelOrder on
// another instance (or on this one after a restart) find it from its
// submit command. A made-up id is still not found.
func TestAnotherInstanceFindsAnUnrecordedOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a, b := e.start(), e.start()
	e.deposit("grace", "USDT", "1000")
	placed := a.place(t, limit("grace", "g-1", "BTCUSDT", buy, "0.01", "50000")).GetOrder()

	for _, req := range []*orderv1.GetOrderRequest{
		{AccountId: "grace", OrderId: placed.GetOrderId()},
		{AccountId: "grace", ClientOrderId: "g-1"},
	} {
		res, err := b.client.GetOrder(t.Context(), req)
		if err != nil {
			t.Fatalf("GetOrder(%v) on another instance: %v", req, err)
		}
		got := res.GetOrder()
		if got.GetOrderId() != placed.GetOrderId() || got.GetClientOrderId() != "g-1" ||
			got.GetStatus() != commonv1.OrderStatus_ORDER_STATUS_NEW || got.GetQuantity() != placed.GetQuantity() ||
			got.GetPrice() != placed.GetPrice() || got.GetRemainingQuantity() != placed.GetQuantity() {
			t.Fatalf("GetOrder(%v) on another instance: %v, placed %v", req, got, placed)
		}
	}
	res, err := b.client.CancelOrder(t.Context(), &orderv1.CancelOrderRequest{AccountId: "grace", ClientOrderId: "g-1"})
	if err != nil || res.GetOrder().GetOrderId() != placed.GetOrderId() {
		t.Fatalf("CancelOrder on another instance: %v, %v", res, err)
	}
	if cmd := e.commands()["cancel:"+placed.GetOrderId()]; cmd.GetCancel().GetOrderId() != placed.GetOrderId() {
		t.Fatalf("cancel command %v", cmd)
	}

	_, err = b.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{AccountId: "mallory", OrderId: placed.GetOrderId()})
	codeOf(t, err, connect.CodeNotFound, "order not found")
	madeUp := fmt.Sprintf("%016x%s", time.Now().UnixNano(), "MADEUPMADEUPMADEUPMADE")
	_, err = b.client.GetOrder(t.Context(), &orderv1.GetOrderRequest{AccountId: "grace", OrderId: madeUp})
	codeOf(t, err, connect.CodeNotFound, "order not found")
}

// An instrument's fee rates travel with the order to the engine, and a buy
// holds the larger fee it may pay on top of its value (a sell's comes out
// of what it receives).
func TestOrdersCarryFeeRates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	maker, taker := "0.0002", "0.001"
	if _, err := e.metadata.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{
		Symbol: "BTCUSDT", MakerFeeRate: &maker, TakerFeeRate: &taker}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the cache to see the fee rates", func() error {
		in, err := e.cache.Get(t.Context(), "BTCUSDT")
		if err != nil {
			return err
		}
		if in.GetTakerFeeRate() != taker {
			return fmt.Errorf("instrument %v", in)
		}
		return nil
	})
	e.deposit("alice", "USDT", "1000")
	e.deposit("bob", "BTC", "1")
	buyOrder := svc.place(t, limit("alice", "", "BTCUSDT", buy, "0.01", "50000")).GetOrder()
	if got := e.balance("alice", "USDT"); got != "499.5/500.5" { // 500 and 0.1% of it
		t.Fatalf("alice USDT %s, want 499.5/500.5 held", got)
	}
	sellOrder := svc.place(t, limit("bob", "", "BTCUSDT", sell, "0.2", "60000")).GetOrder()
	if got := e.balance("bob", "BTC"); got != "0.8/0.2" {
		t.Fatalf("bob BTC %s, want 0.8/0.2 (no fee held in BTC)", got)
	}
	cmds := e.commands()
	for _, id := range []string{buyOrder.GetOrderId(), sellOrder.GetOrderId()} {
		if sub := cmds[id].GetSubmit(); sub.GetMakerFeeRate() != maker || sub.GetTakerFeeRate() != taker {
			t.Fatalf("submit %v, want the instrument's rates", sub)
		}
	}
}

// A perpetual's order holds its initial margin at the account's leverage
// and its larger fee, in the quote asset; a reduce-only one only the fee.
// The submit carries what the engine needs to keep the position.
func TestPerpetualOrderHoldsMargin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	maker, taker := "0.0002", "0.0005"
	if _, err := e.metadata.UpdateInstrument(t.Context(), &metadatav1.UpdateInstrumentRequest{
		Symbol: "BTCUSDT-PERP", MakerFeeRate: &maker, TakerFeeRate: &taker}); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the cache to see the fee rates", func() error {
		if in, err := e.cache.Get(t.Context(), "BTCUSDT-PERP"); err != nil || in.GetTakerFeeRate() != taker {
			return fmt.Errorf("instrument %v: %w", in, err)
		}
		return nil
	})
	if _, err := svc.client.SetLeverage(t.Context(), &orderv1.SetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Leverage: 20}); err != nil {
		t.Fatal(err)
	}
	e.deposit("alice", "USDT", "10000")
	opening := svc.place(t, limit("alice", "", "BTCUSDT-PERP", buy, "0.1", "50000")).GetOrder()
	// 5,000 of value: 250 of margin at 20x and a taker fee of 2.5.
	if got := e.balance("alice", "USDT"); got != "9747.5/252.5" {
		t.Fatalf("alice USDT %s, want 252.5 held (margin 250 and fee 2.5)", got)
	}
	if opening.GetLeverage() != 20 || opening.GetMargin() != "250.0000" || opening.GetReduceOnly() {
		t.Fatalf("order %v, want leverage 20 and margin 250.0000", opening)
	}
	closing := limit("alice", "", "BTCUSDT-PERP", sell, "0.1", "51000")
	closing.Type, closing.ReduceOnly = commonv1.OrderType_ORDER_TYPE_MARKET, true
	reducing := svc.place(t, closing).GetOrder()
	if got := e.balance("alice", "USDT"); got != "9744.95/255.05" { // the fee of 5,100 at 0.05%
		t.Fatalf("alice USDT %s, want only the reduce-only order's fee held on top", got)
	}
	cmds := e.commands()
	sub := cmds[opening.GetOrderId()].GetSubmit()
	if sub.GetLeverage() != 20 || sub.GetMargin() != "250.0000" || sub.GetMaintenanceMarginRate() != "0.005" || sub.GetReduceOnly() {
		t.Fatalf("opening submit %v, want leverage 20, margin 250.0000, maintenance 0.005", sub)
	}
	if sub := cmds[reducing.GetOrderId()].GetSubmit(); !sub.GetReduceOnly() || sub.GetMargin() != "0.0000" || sub.GetPrice() != "51000.0" {
		t.Fatalf("reduce-only submit %v, want reduce_only, no margin, the protection price", sub)
	}
}

// A margin change holds an add first and publishes its command; without an
// engine to answer it the call says Unavailable and keeps the hold (the
// engine's answer would settle it). A request id names one change: reused
// for another amount it is AlreadyExists. Bad input names its field.
func TestAdjustMarginWithoutAnEngine(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	e.deposit("alice", "USDT", "1000")
	req := &orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Amount: "10", RequestId: "r1"}
	_, err := svc.client.AdjustMargin(t.Context(), req)
	codeOf(t, err, connect.CodeUnavailable, "unavailable")
	if got := e.balance("alice", "USDT"); got != "990/10" {
		t.Fatalf("alice USDT %s, want 10 held for the margin", got)
	}
	cmd := e.commands()["margin:alice:r1"].GetMargin()
	if cmd.GetAccountId() != "alice" || cmd.GetAmount() != "10.0000" || cmd.GetLeverage() != 10 {
		t.Fatalf("margin command %v, want alice's 10.0000 at leverage 10", cmd)
	}
	for _, tc := range []struct {
		req  *orderv1.AdjustMarginRequest
		code connect.Code
		text string
	}{
		{&orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Amount: "20", RequestId: "r1"}, connect.CodeAlreadyExists, "request_id r1"},
		{&orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Amount: "0"}, connect.CodeInvalidArgument, "amount"},
		{&orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Amount: "1.00001"}, connect.CodeInvalidArgument, "amount"},
		{&orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT", Amount: "1"}, connect.CodeInvalidArgument, "instrument_id"},
		{&orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Amount: "1", RequestId: "a b"}, connect.CodeInvalidArgument, "request_id"},
		{&orderv1.AdjustMarginRequest{InstrumentId: "BTCUSDT-PERP", Amount: "1"}, connect.CodeInvalidArgument, "account_id"},
		{&orderv1.AdjustMarginRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Amount: "5000"}, connect.CodeFailedPrecondition, "insufficient funds"},
	} {
		_, err := svc.client.AdjustMargin(t.Context(), tc.req)
		codeOf(t, err, tc.code, tc.text)
	}
	if got := e.balance("alice", "USDT"); got != "990/10" {
		t.Fatalf("alice USDT %s after refused changes, want them to hold nothing", got)
	}
}

// An account's leverage on a perpetual: the default until set, then what
// was set, within 1 to the instrument's maximum; no leverage on spot.
func TestLeverage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	svc := e.start()
	got, err := svc.client.GetLeverage(t.Context(), &orderv1.GetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP"})
	if err != nil || got.GetLeverage().GetLeverage() != 10 || got.GetLeverage().GetUpdatedAt() != nil {
		t.Fatalf("default leverage: %v, %v; want 10, never set", got, err)
	}
	set, err := svc.client.SetLeverage(t.Context(), &orderv1.SetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Leverage: 50})
	if err != nil || set.GetLeverage().GetLeverage() != 50 || set.GetLeverage().GetUpdatedAt() == nil {
		t.Fatalf("SetLeverage 50: %v, %v", set, err)
	}
	got, err = svc.client.GetLeverage(t.Context(), &orderv1.GetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP"})
	if err != nil || got.GetLeverage().GetLeverage() != 50 {
		t.Fatalf("leverage after set: %v, %v", got, err)
	}
	other, err := svc.client.GetLeverage(t.Context(), &orderv1.GetLeverageRequest{AccountId: "bob", InstrumentId: "BTCUSDT-PERP"})
	if err != nil || other.GetLeverage().GetLeverage() != 10 {
		t.Fatalf("another account's leverage: %v, %v", other, err)
	}
	for _, tc := range []struct {
		req        *orderv1.SetLeverageRequest
		code       connect.Code
		mentioning string
	}{
		{&orderv1.SetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Leverage: 51}, connect.CodeInvalidArgument, "leverage: must be 1 to BTCUSDT-PERP's max_leverage 50"},
		{&orderv1.SetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT-PERP", Leverage: 0}, connect.CodeInvalidArgument, "leverage"},
		{&orderv1.SetLeverageRequest{AccountId: "alice", InstrumentId: "BTCUSDT", Leverage: 5}, connect.CodeInvalidArgument, "instrument_id: BTCUSDT is not a perpetual"},
		{&orderv1.SetLeverageRequest{AccountId: "alice", InstrumentId: "NOPE-PERP", Leverage: 5}, connect.CodeNotFound, "NOPE-PERP"},
		{&orderv1.SetLeverageRequest{InstrumentId: "BTCUSDT-PERP", Leverage: 5}, connect.CodeInvalidArgument, "account_id"},
	} {
		_, err := svc.client.SetLeverage(t.Context(), tc.req)
		codeOf(t, err, tc.code, tc.mentioning)
	}
}
