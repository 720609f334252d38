package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tradex-mesh/tradex/gateway"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// A perpetual's mark price over REST (GET /v1/instruments/:symbol/mark)
// and the public WebSocket channel mark; a spot instrument has none.
func TestMarkPriceOverRESTAndWebSocket(t *testing.T) {
	t.Parallel()
	p := platformtest.New(t)
	feed := newFeed(t, wsfeed.Default(), wsfeed.Deps{MarketData: p.MarketData})
	gw, err := gateway.New(gateway.Default(), gateway.Deps{
		Services:  gateway.Services{Orders: p.Orders, Wallet: p.Wallet, Metadata: p.Metadata, MarketData: p.MarketData},
		Verifier:  auth.Dev{AdminToken: adminToken},
		WebSocket: feed.Handler(),
	})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, gw)

	r := call(t, "GET", base+"/v1/instruments/BTCUSDT-PERP/mark", "", nil)
	r.ok(t, 200)
	if m, _ := r.body["markPrice"].(map[string]any); m["instrumentId"] != "BTCUSDT-PERP" || m["markPrice"] != "" {
		t.Fatalf("before any quote: %s", r.raw)
	}
	checkError(t, call(t, "GET", base+"/v1/instruments/ETHUSDT/mark", "", nil), 400, "invalid_argument", "not a perpetual")
	checkError(t, call(t, "GET", base+"/v1/instruments/NOPE-PERP/mark", "", nil), 404, "not_found", "NOPE-PERP")

	ws, resp, err := websocket.DefaultDialer.DialContext(t.Context(), "ws"+strings.TrimPrefix(base, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	defer ws.Close()
	read := func(what string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		for {
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			if match(f) {
				return f
			}
		}
	}
	send := func(frame string) {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"op":"subscribe","channels":[{"name":"mark","symbols":["ETHUSDT"]}],"req_id":"spot"}`)
	if f := read("the refusal", func(f map[string]any) bool { return f["req_id"] == "spot" }); f["op"] != "error" ||
		!strings.Contains(f["message"].(string), "not a perpetual") {
		t.Fatalf("subscribing to a spot instrument's mark: %v", f)
	}
	send(`{"op":"subscribe","channels":[{"name":"mark","symbols":["BTCUSDT-PERP"]}],"req_id":"perp"}`)
	if f := read("the ack", func(f map[string]any) bool { return f["req_id"] == "perp" }); f["op"] != "subscribed" {
		t.Fatalf("subscribing to the perpetual's mark: %v", f)
	}

	// The engine's event with a mark (published directly: perpetuals do
	// not trade through the order service yet).
	pub := streams.NewPublisher(p.JetStream(), streams.DefaultCatalog(), streams.WithSource("test/engine"))
	ev := &enginev1.EngineEvent{
		EventId: "BTCUSDT-PERP:1:0", InstrumentId: "BTCUSDT-PERP", Sequence: 1, EngineTime: timestamppb.Now(),
		BookChanges: []*enginev1.BookLevelChange{{Side: commonv1.Side_SIDE_SELL, Price: "50000.0", Quantity: "0.500"}},
		Event:       &enginev1.EngineEvent_Accepted{Accepted: &enginev1.OrderAccepted{OrderId: "o1"}},
		MarkPrice:   "50000.0",
	}
	if _, err := pub.Publish(t.Context(), streams.TopicEngineEvent, "BTCUSDT-PERP", ev); err != nil {
		t.Fatal(err)
	}
	f := read("the mark", func(f map[string]any) bool { return f["op"] == "mark" })
	data, _ := json.Marshal(f["data"])
	if f["symbol"] != "BTCUSDT-PERP" || !strings.Contains(string(data), `"markPrice":"50000.0"`) {
		t.Fatalf("mark frame %v", f)
	}
	polltest.Until(t, "the mark over REST", func() error {
		r := call(t, "GET", base+"/v1/instruments/BTCUSDT-PERP/mark", "", nil)
		if m, _ := r.body["markPrice"].(map[string]any); r.status != 200 || m["markPrice"] != "50000.0" {
			return fmt.Errorf("GET mark: %d %s", r.status, r.raw)
		}
		return nil
	})
}
