package order

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/decimal"
	"github.com/tradex-mesh/tradex/streams"
)

// HeaderClientOrderID carries the client order id on a submit command
// (the engine does not need it; a reader of the topic may).
const HeaderClientOrderID = "Tradex-Client-Order-Id"

// cancelCommandID is the command id (and message id) of the cancel of an
// order.
func cancelCommandID(orderID string) string { return "cancel:" + orderID }

// submitCommand is the engine command that submits o.
func submitCommand(o Order) *enginev1.OrderCommand {
	s := &enginev1.SubmitOrder{
		OrderId: o.ID, AccountId: o.Account,
		Side: commonv1.Side(o.Side), Type: commonv1.OrderType(o.Type),
		TimeInForce: commonv1.TimeInForce(o.TimeInForce), PostOnly: o.PostOnly,
		Quantity: decimal.Format(o.Quantity, o.QuantityScale), PriceScale: o.PriceScale, QuantityScale: o.QuantityScale,
		SelfTradePrevention: commonv1.SelfTradePrevention(o.SelfTradePrevention),
	}
	if o.Price != 0 {
		s.Price = decimal.Format(o.Price, o.PriceScale)
	}
	if o.MakerFeeRate != 0 {
		s.MakerFeeRate = decimal.FormatTrim(o.MakerFeeRate, feeScale)
	}
	if o.TakerFeeRate != 0 {
		s.TakerFeeRate = decimal.FormatTrim(o.TakerFeeRate, feeScale)
	}
	if o.Leverage != 0 {
		s.Leverage, s.ReduceOnly = o.Leverage, o.ReduceOnly
		s.Margin = decimal.Format(o.Margin, o.PriceScale+o.QuantityScale)
		s.MaintenanceMarginRate = decimal.FormatTrim(o.MaintenanceRate, feeScale)
	}
	return &enginev1.OrderCommand{
		CommandId: o.ID, InstrumentId: o.Instrument, SentAt: timestamppb.New(o.CreatedAt),
		Command: &enginev1.OrderCommand_Submit{Submit: s},
	}
}

// publishSubmit stores the submit command of o on engine.order.v1; its
// message id is the order id, so a repeat inside the duplicate window is
// stored once.
func (s *Service) publishSubmit(ctx context.Context, o Order) error {
	opts := []streams.PublishOption{streams.WithMsgID(o.ID)}
	if o.ClientOrderID != "" {
		opts = append(opts, streams.WithHeader(HeaderClientOrderID, o.ClientOrderID))
	}
	if _, err := s.pub.Publish(ctx, streams.TopicOrderCommand, o.Instrument, submitCommand(o), opts...); err != nil {
		return fmt.Errorf("submit order %s: %w", o.ID, err)
	}
	return nil
}

// publishCancel stores the cancel command of o on engine.order.v1.
func (s *Service) publishCancel(ctx context.Context, o Order) error {
	id := cancelCommandID(o.ID)
	cmd := &enginev1.OrderCommand{
		CommandId: id, InstrumentId: o.Instrument, SentAt: timestamppb.New(s.now()),
		Command: &enginev1.OrderCommand_Cancel{Cancel: &enginev1.CancelOrder{
			OrderId: o.ID, AccountId: o.Account, Reason: commonv1.CancelReason_CANCEL_REASON_USER_REQUESTED,
		}},
	}
	if _, err := s.pub.Publish(ctx, streams.TopicOrderCommand, o.Instrument, cmd, streams.WithMsgID(id)); err != nil {
		return fmt.Errorf("cancel order %s: %w", o.ID, err)
	}
	return nil
}
