package order

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/internal/paging"
	"github.com/tradex-mesh/tradex/internal/perp"
	"github.com/tradex-mesh/tradex/streams"
)

// handler implements orderv1connect.OrderServiceHandler: proto <-> domain.
type handler struct{ s *Service }

// ordersList names the page tokens of ListOrders.
const ordersList = "orders"

const (
	maxClientOrderID   = 64
	maxSelfTradeOption = int32(commonv1.SelfTradePrevention_SELF_TRADE_PREVENTION_CANCEL_BOTH)
)

// PlaceOrder validates, holds funds for and submits an order.
func (h *handler) PlaceOrder(ctx context.Context, req *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	intent, err := h.intent(ctx, req)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	if err := h.s.admit(); err != nil { // cancels are always let through: they shrink the backlog
		return nil, h.fail(ctx, err)
	}
	o, replayed, err := h.s.place(ctx, intent)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &orderv1.PlaceOrderResponse{Order: toProto(o), Replayed: replayed}, nil
}

// CancelOrder sends the cancel of a working order to the engine.
func (h *handler) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	if err := checkName(req.GetAccountId(), req.GetOrderId(), req.GetClientOrderId(), true); err != nil {
		return nil, h.fail(ctx, err)
	}
	o, err := h.s.cancel(ctx, req.GetAccountId(), req.GetOrderId(), req.GetClientOrderId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &orderv1.CancelOrderResponse{Order: toProto(o)}, nil
}

// GetOrder returns one order.
func (h *handler) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	if err := checkName(req.GetAccountId(), req.GetOrderId(), req.GetClientOrderId(), false); err != nil {
		return nil, h.fail(ctx, err)
	}
	o, err := h.s.find(ctx, req.GetAccountId(), req.GetOrderId(), req.GetClientOrderId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &orderv1.GetOrderResponse{Order: toProto(o)}, nil
}

// ListOrders returns a page of orders, newest first. The page token
// carries the last order id of the previous page.
func (h *handler) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	if err := h.s.checkReady(); err != nil {
		return nil, h.fail(ctx, err)
	}
	size, after, err := paging.Read(req.GetPage(), ordersList)
	if err == nil && after != "" && !isKeyToken(after) {
		err = paging.ErrBadToken
	}
	if err != nil {
		return nil, h.fail(ctx, invalid(paging.Field(err), err.Error()))
	}
	statuses := req.GetStatuses()
	match := filter(req.GetAccountId(), req.GetInstrumentId())
	orders, more := h.s.st.list(func(o Order) bool {
		return match(o) && (len(statuses) == 0 || slices.Contains(statuses, commonv1.OrderStatus(o.Status)))
	}, after, size)
	res := &orderv1.ListOrdersResponse{Page: &commonv1.PageResponse{}}
	for _, o := range orders {
		res.Orders = append(res.Orders, toProto(o))
	}
	if more && len(orders) > 0 {
		res.Page.NextPageToken = paging.Token(ordersList, orders[len(orders)-1].ID)
	}
	return res, nil
}

// WatchOrders sends the working orders, a snapshot end, then every changed
// order until the client goes away. A client too slow to keep up is cut
// off with ResourceExhausted and resubscribes.
func (h *handler) WatchOrders(ctx context.Context, req *orderv1.WatchOrdersRequest, stream *connect.ServerStream[orderv1.WatchOrdersResponse]) error {
	if err := h.s.checkReady(); err != nil {
		return h.fail(ctx, err)
	}
	current, sub, cancel := h.s.st.subscribe(filter(req.GetAccountId(), req.GetInstrumentId()), h.s.cfg.WatchBuffer)
	defer cancel()
	for _, o := range current {
		if err := stream.Send(&orderv1.WatchOrdersResponse{Event: &orderv1.WatchOrdersResponse_Current{Current: toProto(o)}}); err != nil {
			return err
		}
	}
	if err := stream.Send(&orderv1.WatchOrdersResponse{Event: &orderv1.WatchOrdersResponse_SnapshotEnd{SnapshotEnd: &commonv1.SnapshotEnd{}}}); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.s.stopped:
			return connect.NewError(connect.CodeUnavailable, errors.New("order service stopped; reconnect"))
		case o, ok := <-sub.ch:
			if !ok {
				return connect.NewError(connect.CodeResourceExhausted, errors.New("watch fell behind; resubscribe"))
			}
			if err := stream.Send(&orderv1.WatchOrdersResponse{Event: &orderv1.WatchOrdersResponse_Updated{Updated: toProto(o)}}); err != nil {
				return err
			}
		}
	}
}

// filter matches orders of account and instrument ("" matches all).
func filter(account, instrument string) func(Order) bool {
	return func(o Order) bool {
		return (account == "" || o.Account == account) && (instrument == "" || o.Instrument == instrument)
	}
}

// checkName checks how a request names an order.
func checkName(account, id, clientID string, accountRequired bool) error {
	switch {
	case accountRequired && account == "":
		return invalid("account_id", "is required")
	case id == "" && clientID == "":
		return invalid("order_id", "order_id or client_order_id is required")
	case id == "" && account == "":
		return invalid("account_id", "is required with client_order_id")
	}
	return nil
}

// intent checks a PlaceOrderRequest against the instrument and returns the
// order it asks for (without an id).
func (h *handler) intent(ctx context.Context, req *orderv1.PlaceOrderRequest) (Order, error) {
	acct, cid, sym := req.GetAccountId(), req.GetClientOrderId(), req.GetInstrumentId()
	if err := checkAccount(acct); err != nil {
		return Order{}, err
	}
	switch {
	case !validClientOrderID(cid):
		return Order{}, invalid("client_order_id", "at most 64 characters of letters, digits, '-', '_' and '.'")
	case sym == "":
		return Order{}, invalid("instrument_id", "is required")
	}
	in, err := h.s.insts.Get(ctx, sym)
	if errors.Is(err, instruments.ErrNotFound) {
		return Order{}, fmt.Errorf("%w: %s", ErrInstrumentNotFound, sym)
	}
	if err != nil {
		return Order{}, fmt.Errorf("instrument %s: %w", sym, err)
	}
	perpetual := in.GetKind() == commonv1.InstrumentKind_INSTRUMENT_KIND_PERPETUAL
	switch {
	case perpetual && in.GetPerpetual().GetMaxLeverage() < 1:
		return Order{}, fmt.Errorf("%w: %s has no contract rules", ErrNotTradable, sym)
	case !perpetual && in.GetKind() != commonv1.InstrumentKind_INSTRUMENT_KIND_SPOT:
		return Order{}, fmt.Errorf("%w: %s is %s; spot instruments and perpetuals trade", ErrNotTradable, sym, in.GetKind())
	case !perpetual && req.GetReduceOnly():
		return Order{}, invalid("reduce_only", "only a perpetual's orders may be reduce-only")
	}
	rules, err := h.s.insts.Rules(ctx, sym)
	if err != nil {
		return Order{}, fmt.Errorf("rules of %s: %w", sym, err)
	}
	if err := rules.CheckTrading(); err != nil {
		return Order{}, fmt.Errorf("%w: %w", ErrNotTradable, err)
	}
	now := h.s.now()
	o := Order{
		ClientOrderID: cid, Account: acct, Instrument: sym,
		Side: Side(req.GetSide()), Type: Type(req.GetType()), TimeInForce: TimeInForce(req.GetTimeInForce()),
		PostOnly: req.GetPostOnly(), SelfTradePrevention: int32(req.GetSelfTradePrevention()), ReduceOnly: req.GetReduceOnly(),
		PriceScale: rules.PriceScale, QuantityScale: rules.QuantityScale,
		Status: StatusNew, CreatedAt: now, UpdatedAt: now, Revision: 1,
	}
	if err := checkEnums(&o); err != nil {
		return Order{}, err
	}
	if err := checkAmounts(&o, rules, req.GetQuantity(), req.GetPrice(), perpetual); err != nil {
		return Order{}, err
	}
	if o.MakerFeeRate, o.TakerFeeRate, err = feeRates(in.GetMakerFeeRate(), in.GetTakerFeeRate()); err != nil {
		return Order{}, fmt.Errorf("instrument %s: %w", sym, err)
	}
	if perpetual {
		lv, err := h.s.leverage(ctx, acct, sym)
		if err != nil {
			return Order{}, err
		}
		if o.MaintenanceRate, err = decimal.ParseNonNegative(in.GetPerpetual().GetMaintenanceMarginRate(), feeScale); err != nil {
			return Order{}, fmt.Errorf("instrument %s maintenance_margin_rate: %w", sym, err)
		}
		o.Leverage = lv.Leverage
		return o, setMarginHold(&o, rules, in.GetQuoteAsset())
	}
	return o, setHold(&o, rules, in.GetBaseAsset(), in.GetQuoteAsset())
}

// setMarginHold sets what the wallet holds for a perpetual's order, in the
// quote asset: its initial margin (its value at the limit or protection
// price divided by the leverage, rounded up; none for a reduce-only order,
// which opens nothing) and the larger of its fees.
func setMarginHold(o *Order, r instruments.Rules, quote string) error {
	n, err := r.Notional(o.Price, o.Quantity)
	if err != nil {
		return invalid("quantity", fmt.Sprintf("order value: %v", err))
	}
	if !o.ReduceOnly {
		if o.Margin, err = perp.InitialMargin(n, int64(o.Leverage)); err != nil {
			return invalid("quantity", fmt.Sprintf("order margin: %v", err))
		}
	}
	fee, err := decimal.MulRound(n, r.NotionalScale(), max(o.MakerFeeRate, o.TakerFeeRate), feeScale, r.NotionalScale(), decimal.RoundUp)
	if err != nil || o.Margin > math.MaxInt64-fee {
		return invalid("quantity", "order margin and fee out of range")
	}
	o.HoldAsset, o.HoldAmount, o.HoldScale = quote, o.Margin+fee, r.NotionalScale()
	return nil
}

// feeScale is the scale of fee rates (millionths).
const feeScale = 6

// feeRates parses an instrument's fee rates ("" is 0).
func feeRates(maker, taker string) (int64, int64, error) {
	var out [2]int64
	for i, text := range []string{maker, taker} {
		if text == "" {
			continue
		}
		v, err := decimal.ParseNonNegative(text, feeScale)
		if err != nil {
			return 0, 0, fmt.Errorf("fee rate: %w", err)
		}
		out[i] = v
	}
	return out[0], out[1], nil
}

// checkAccount refuses an empty account id or one that is no topic key.
func checkAccount(acct string) error {
	switch {
	case acct == "":
		return invalid("account_id", "is required")
	case streams.ValidateKey(acct) != nil:
		return invalid("account_id", "must be printable ASCII without '.', '*', '>' or spaces, at most 128 bytes")
	}
	return nil
}

func validClientOrderID(s string) bool {
	if len(s) > maxClientOrderID {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// checkEnums checks side, type, time in force (resolving its default),
// post-only and self-trade prevention.
func checkEnums(o *Order) error {
	switch {
	case o.Side != SideBuy && o.Side != SideSell:
		return invalid("side", "must be SIDE_BUY or SIDE_SELL")
	case o.Type != TypeLimit && o.Type != TypeMarket:
		return invalid("type", "must be ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET")
	case o.TimeInForce < 0 || o.TimeInForce > FOK:
		return invalid("time_in_force", "unknown value")
	case o.SelfTradePrevention < 0 || o.SelfTradePrevention > maxSelfTradeOption:
		return invalid("self_trade_prevention", "unknown value")
	}
	if o.TimeInForce == 0 {
		o.TimeInForce = GTC
		if o.Type == TypeMarket {
			o.TimeInForce = IOC
		}
	}
	if o.PostOnly && (o.Type != TypeLimit || o.TimeInForce != GTC) {
		return invalid("post_only", "only limit GTC orders may be post-only")
	}
	return nil
}

// checkAmounts parses and checks quantity and price against the rules. A
// market order may carry a price: a protection bound it never trades
// beyond; a market buy must, since its hold is bound * quantity, and so
// must a perpetual's market order on either side (its margin is).
func checkAmounts(o *Order, r instruments.Rules, qty, price string, perpetual bool) error {
	q, err := r.ParseQuantity(qty)
	if err != nil {
		return invalid("quantity", err.Error())
	}
	if err := r.CheckQuantity(q); err != nil {
		return invalid("quantity", err.Error())
	}
	o.Quantity, o.Remaining = q, q
	switch {
	case price == "" && o.Type == TypeLimit:
		return invalid("price", "is required for a limit order")
	case price == "" && o.Side == SideBuy:
		return invalid("price", "a market buy needs a price: the most it may pay per unit, which bounds the funds held")
	case price == "" && perpetual:
		return invalid("price", "a perpetual's market order needs a price: the worst it may trade at, which bounds the margin held")
	case price == "":
		return nil
	}
	p, err := r.ParsePrice(price)
	if err != nil {
		return invalid("price", err.Error())
	}
	if err := r.CheckPrice(p); err != nil {
		return invalid("price", err.Error())
	}
	o.Price = p
	if o.Type == TypeLimit {
		if err := r.CheckNotional(p, q); err != nil {
			return invalid("quantity", err.Error())
		}
	}
	return nil
}

// setHold sets what the wallet holds for o: price * quantity of the quote
// asset for a buy, the quantity of the base asset for a sell.
func setHold(o *Order, r instruments.Rules, base, quote string) error {
	if o.Side == SideSell {
		o.HoldAsset, o.HoldAmount, o.HoldScale = base, o.Quantity, r.QuantityScale
		return nil
	}
	n, err := r.Notional(o.Price, o.Quantity)
	if err != nil {
		return invalid("quantity", fmt.Sprintf("order value: %v", err))
	}
	// A buy pays the fee on top, in the quote asset, as maker or as taker:
	// hold the larger (a sell's comes out of what it receives).
	fee, err := decimal.MulRound(n, r.NotionalScale(), max(o.MakerFeeRate, o.TakerFeeRate), feeScale, r.NotionalScale(), decimal.RoundUp)
	if err != nil || n > math.MaxInt64-fee {
		return invalid("quantity", "order value and fee out of range")
	}
	o.HoldAsset, o.HoldAmount, o.HoldScale = quote, n+fee, r.NotionalScale()
	return nil
}

// toProto is the API form of o.
func toProto(o Order) *orderv1.Order {
	out := &orderv1.Order{
		OrderId: o.ID, ClientOrderId: o.ClientOrderID, AccountId: o.Account, InstrumentId: o.Instrument,
		Side: commonv1.Side(o.Side), Type: commonv1.OrderType(o.Type), TimeInForce: commonv1.TimeInForce(o.TimeInForce),
		PostOnly: o.PostOnly, Quantity: decimal.Format(o.Quantity, o.QuantityScale),
		FilledQuantity:    decimal.Format(o.Filled, o.QuantityScale),
		RemainingQuantity: decimal.Format(o.Remaining, o.QuantityScale),
		Status:            commonv1.OrderStatus(o.Status),
		RejectReason:      commonv1.RejectReason(o.RejectReason), CancelReason: commonv1.CancelReason(o.CancelReason),
		ExpireReason: commonv1.ExpireReason(o.ExpireReason), StatusMessage: o.Message,
		SelfTradePrevention: commonv1.SelfTradePrevention(o.SelfTradePrevention),
		CreatedAt:           timestamppb.New(o.CreatedAt), UpdatedAt: timestamppb.New(o.UpdatedAt), Revision: o.Revision,
		ReduceOnly: o.ReduceOnly, Leverage: o.Leverage,
	}
	if o.Leverage != 0 {
		out.Margin = decimal.Format(o.Margin, o.PriceScale+o.QuantityScale)
	}
	if o.Price != 0 {
		out.Price = decimal.Format(o.Price, o.PriceScale)
	}
	if avg, ok := o.AveragePrice(); ok {
		out.AveragePrice = decimal.Format(avg, o.PriceScale)
	}
	return out
}

func (h *handler) fail(ctx context.Context, err error) error { return toConnect(ctx, h.s.log, err) }
