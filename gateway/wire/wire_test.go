package wire

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
)

func TestTheSeedOrderBody(t *testing.T) {
	t.Parallel()
	// The platform's REST example, as written.
	body := `{ "instrumentId": "BTCUSDT", "side": "buy", "type": "limit", "quantity": 10.5, "price": 50000.0}`
	var req orderv1.PlaceOrderRequest
	if err := Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	want := &orderv1.PlaceOrderRequest{InstrumentId: "BTCUSDT", Side: commonv1.Side_SIDE_BUY,
		Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: "10.5", Price: "50000.0"}
	if !proto.Equal(&req, want) {
		t.Errorf("got %v, want %v", &req, want)
	}
}

func TestRequestSpellings(t *testing.T) {
	t.Parallel()
	// Strings or numbers, short/full/numeric enum names, proto names.
	body := `{"instrument_id":"ETHUSDT","side":"SIDE_SELL","type":2,"quantity":"0.25","timeInForce":"IOC","postOnly":false,"clientOrderId":null}`
	var req orderv1.PlaceOrderRequest
	if err := Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	want := &orderv1.PlaceOrderRequest{InstrumentId: "ETHUSDT", Side: commonv1.Side_SIDE_SELL,
		Type: commonv1.OrderType_ORDER_TYPE_MARKET, Quantity: "0.25", TimeInForce: commonv1.TimeInForce_TIME_IN_FORCE_IOC}
	if !proto.Equal(&req, want) {
		t.Errorf("got %v, want %v", &req, want)
	}
}

func TestRequestErrorsNameTheField(t *testing.T) {
	t.Parallel()
	cases := []struct{ body, field, reason string }{
		{`{"side":"up"}`, "side", `must be one of "buy", "sell"`},
		{`{"quantity":1e3}`, "quantity", "exponent"},
		{`{"quantity":true}`, "quantity", "must be a string, not a boolean"},
		{`{"postOnly":"yes"}`, "postOnly", "true or false"},
		{`{"colour":"red"}`, "colour", "unknown field"},
		{`{"side":`, "", "not valid JSON"},
		{``, "", "empty body"},
		{`[1]`, "", "must be a JSON object, not an array"},
		{`{} {}`, "", "unexpected data"},
	}
	for _, c := range cases {
		var req orderv1.PlaceOrderRequest
		err := Unmarshal([]byte(c.body), &req)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != c.field || !strings.Contains(fe.Reason, c.reason) {
			t.Errorf("%s: %v, want field %q with %q", c.body, err, c.field, c.reason)
		}
	}
	var req marketdatav1.ListCandlesRequest
	err := Unmarshal([]byte(`{"startTime":"yesterday"}`), &req)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "startTime" {
		t.Errorf("timestamp: %v", err)
	}
	var list orderv1.ListOrdersRequest
	err = Unmarshal([]byte(`{"statuses":["new","bogus"]}`), &list)
	if !errors.As(err, &fe) || fe.Field != "statuses[1]" {
		t.Errorf("list element: %v", err)
	}
	err = Unmarshal([]byte(`{"page":{"pageSize":"x"}}`), &list)
	if !errors.As(err, &fe) || fe.Field != "page.pageSize" {
		t.Errorf("nested: %v", err)
	}
}

func TestResponse(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 0, 0, 500, time.UTC)
	o := &orderv1.Order{OrderId: "o1", InstrumentId: "BTCUSDT", Side: commonv1.Side_SIDE_BUY,
		Status: commonv1.OrderStatus_ORDER_STATUS_PARTIALLY_FILLED, Price: "50000.00", Quantity: "1.5",
		CreatedAt: timestamppb.New(at), Revision: 7, StatusMessage: "a \"quoted\" <tag>\n"}
	got := Marshal(&orderv1.PlaceOrderResponse{Order: o})
	var m struct {
		Order    map[string]any `json:"order"`
		Replayed *bool          `json:"replayed"`
	}
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if m.Replayed == nil || *m.Replayed {
		t.Errorf("replayed: %v", m.Replayed)
	}
	ord := m.Order
	for k, want := range map[string]any{
		"orderId": "o1", "side": "buy", "status": "partially_filled", "price": "50000.00", "quantity": "1.5",
		"type": "", "createdAt": "2026-12-01T10:00:00.0000005Z", "updatedAt": nil, "revision": float64(7),
		"postOnly": false, "selfTradePrevention": "", "statusMessage": "a \"quoted\" <tag>\n",
		"timeInForce": "",
	} {
		if ord[k] != want {
			t.Errorf("%s = %#v, want %#v", k, ord[k], want)
		}
	}
	// A oneof writes only the field that is set; lists are [] when empty.
	got = Marshal(&orderv1.WatchOrdersResponse{Event: &orderv1.WatchOrdersResponse_SnapshotEnd{SnapshotEnd: &commonv1.SnapshotEnd{}}})
	if !strings.HasPrefix(string(got), `{"snapshotEnd":{`) || strings.Contains(string(got), "current") {
		t.Errorf("oneof: %s", got)
	}
	got = Marshal(&marketdatav1.BookSnapshot{InstrumentId: "X"})
	if !strings.Contains(string(got), `"bids":[]`) || !strings.Contains(string(got), `"asks":[]`) {
		t.Errorf("empty lists: %s", got)
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	in := &orderv1.ListOrdersRequest{AccountId: "a", Statuses: []commonv1.OrderStatus{commonv1.OrderStatus_ORDER_STATUS_NEW,
		commonv1.OrderStatus_ORDER_STATUS_FILLED}, Page: &commonv1.PageRequest{PageSize: 20, PageToken: "t"}}
	var out orderv1.ListOrdersRequest
	if err := Unmarshal(Marshal(in), &out); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(in, &out) {
		t.Errorf("round trip: %v, want %v", &out, in)
	}
	c := &marketdatav1.ListCandlesRequest{InstrumentId: "BTCUSDT", Interval: marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_HOUR,
		StartTime: timestamppb.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))}
	var c2 marketdatav1.ListCandlesRequest
	if err := Unmarshal(Marshal(c), &c2); err != nil || !proto.Equal(c, &c2) {
		t.Errorf("candles round trip: %v, %v", &c2, err)
	}
}

func TestEnumName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		EnumName(commonv1.Side_SIDE_SELL):                                        "sell",
		EnumName(commonv1.TimeInForce_TIME_IN_FORCE_FOK):                         "fok",
		EnumName(commonv1.OrderStatus_ORDER_STATUS_UNSPECIFIED):                  "",
		EnumName(marketdatav1.CandleInterval_CANDLE_INTERVAL_FIFTEEN_MINUTES):    "fifteen_minutes",
		EnumName(commonv1.SelfTradePrevention_SELF_TRADE_PREVENTION_CANCEL_BOTH): "cancel_both",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func BenchmarkMarshalOrder(b *testing.B) {
	o := &orderv1.PlaceOrderResponse{Order: &orderv1.Order{OrderId: "01JBXYZ", InstrumentId: "BTCUSDT", AccountId: "alice",
		Side: commonv1.Side_SIDE_BUY, Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Price: "50000.00", Quantity: "1.5",
		FilledQuantity: "0", RemainingQuantity: "1.5", Status: commonv1.OrderStatus_ORDER_STATUS_NEW,
		CreatedAt: timestamppb.Now(), UpdatedAt: timestamppb.Now(), Revision: 1}}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], o)
	}
}

// Strict decoding: what encoding/json would take silently is refused,
// naming the field.
func TestUnmarshalIsStrict(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, field, reason string
		msg                       proto.Message
	}{
		{"duplicate key", `{"instrumentId":"BTCUSDT","instrumentId":"ETHUSDT"}`, "instrumentId", "given twice", &orderv1.PlaceOrderRequest{}},
		{"both spellings", `{"instrumentId":"BTCUSDT","instrument_id":"ETHUSDT"}`, "instrumentId", "given twice, also as instrument_id", &orderv1.PlaceOrderRequest{}},
		{"nested duplicate", `{"page":{"pageSize":1,"pageSize":2}}`, "page.pageSize", "given twice", &orderv1.ListOrdersRequest{}},
		{"invalid UTF-8", "{\"instrumentId\":\"BTC\xffUSDT\"}", "", "invalid UTF-8", &orderv1.PlaceOrderRequest{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Unmarshal([]byte(tc.body), tc.msg)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(fe.Reason, tc.reason) {
				t.Fatalf("Unmarshal(%s) = %v, want field %q: %s", tc.body, err, tc.field, tc.reason)
			}
		})
	}
}
