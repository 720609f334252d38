package wsfeed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/gofiber/fiber/v2"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/gateway/auth"
	"github.com/tradex-mesh/tradex/gateway/wsfeed"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/internal/platformtest"
)

// waitFor bounds every wait for a frame or a condition.
const waitFor = 20 * time.Second

// env is a platform with the feed mounted on a real Fiber app served on
// a loopback port.
type env struct {
	p    *platformtest.Platform
	feed *wsfeed.Feed
	url  string
}

func newEnv(t *testing.T, configure func(*wsfeed.Config)) *env {
	t.Helper()
	p := platformtest.New(t, platformtest.WithSync(embedded.SyncPeriodic))
	cfg := wsfeed.Default()
	if configure != nil {
		configure(&cfg)
	}
	feed, err := wsfeed.New(cfg, wsfeed.Deps{
		MarketData: p.MarketData, Orders: p.Orders, Wallet: p.Wallet, Verifier: auth.Dev{AdminToken: "admin-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &env{p: p, feed: feed, url: serve(t, feed)}
}

// serve mounts the feed on /ws of a Fiber app on a loopback listener and
// returns its ws:// URL; the cleanup shuts both down.
func serve(t testing.TB, feed *wsfeed.Feed) string {
	t.Helper()
	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	app.Get("/ws", feed.Handler())
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), waitFor)
		defer cancel()
		if err := feed.Shutdown(ctx); err != nil {
			t.Errorf("feed shutdown: %v", err)
		}
		if err := app.ShutdownWithContext(ctx); err != nil {
			t.Errorf("app shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

// client is a test's WebSocket client.
type client struct {
	t  testing.TB
	ws *websocket.Conn
}

func (e *env) dial(t testing.TB) *client { return dialURL(t, e.url, nil, nil) }

func dialURL(t testing.TB, url string, header http.Header, d *websocket.Dialer) *client {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: waitFor}
	}
	ws, resp, err := d.DialContext(t.Context(), url, header)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	resp.Body.Close()
	t.Cleanup(func() { ws.Close() })
	return &client{t: t, ws: ws}
}

func (c *client) send(frame string) {
	c.t.Helper()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("send %s: %v", frame, err)
	}
}

// frame is any server frame.
type frame struct {
	Op       string          `json:"op"`
	Type     string          `json:"type"`
	Symbol   string          `json:"symbol"`
	Interval string          `json:"interval"`
	Code     string          `json:"code"`
	Message  string          `json:"message"`
	ReqID    json.RawMessage `json:"req_id"`
	Counter  uint64          `json:"counter"`
	Account  string          `json:"account"`
	Channels []struct {
		Name     string   `json:"name"`
		Symbols  []string `json:"symbols"`
		Depth    int      `json:"depth"`
		Interval string   `json:"interval"`
	} `json:"channels"`
	Data json.RawMessage `json:"data"`
	raw  string
}

func (f frame) String() string { return f.raw }

func (f frame) reqID() string { return string(bytes.Trim(f.ReqID, `"`)) }

// next reads the next frame that is not a heartbeat.
func (c *client) next() frame {
	c.t.Helper()
	for {
		f := c.read()
		if f.Op != "heartbeat" {
			return f
		}
	}
}

// read reads the next frame, failing the test after waitFor.
func (c *client) read() frame {
	c.t.Helper()
	f, err := c.tryRead(waitFor)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

func (c *client) tryRead(d time.Duration) (frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		return frame{}, err
	}
	if typ != websocket.TextMessage {
		return frame{}, errors.New("binary frame")
	}
	f := frame{raw: string(data)}
	if err := json.Unmarshal(data, &f); err != nil {
		return frame{}, err
	}
	return f, nil
}

// until reads frames until one matches, skipping the others.
func (c *client) until(what string, match func(frame) bool) frame {
	c.t.Helper()
	for {
		f := c.read()
		if match(f) {
			return f
		}
		if f.Op == "error" {
			c.t.Fatalf("waiting for %s: %s", what, f)
		}
	}
}

// expect reads the next non-heartbeat frame and checks its op (and, for
// an error, its code) and req_id.
func (c *client) expect(op, code, reqID string) frame {
	c.t.Helper()
	f := c.next()
	if f.Op != op || f.Code != code || f.reqID() != reqID {
		c.t.Fatalf("got %s; want op %q code %q req_id %q", f, op, code, reqID)
	}
	return f
}

// fund deposits enough for a few orders on BTCUSDT.
func fund(t *testing.T, p *platformtest.Platform, accounts ...string) {
	t.Helper()
	for _, acct := range accounts {
		for _, asset := range []string{"BTC", "USDT"} {
			if _, err := p.Wallet.Deposit(t.Context(), &walletv1.DepositRequest{
				TransferId: "d-" + acct + "-" + asset, AccountId: acct, Asset: asset, Amount: "1000000",
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func place(t *testing.T, p *platformtest.Platform, acct string, side commonv1.Side, qty, price string) *orderv1.Order {
	t.Helper()
	res, err := p.Orders.PlaceOrder(t.Context(), &orderv1.PlaceOrderRequest{
		AccountId: acct, InstrumentId: "BTCUSDT", Side: side, Type: commonv1.OrderType_ORDER_TYPE_LIMIT, Quantity: qty, Price: price,
	})
	if err != nil {
		t.Fatalf("place %s %v %s@%s: %v", acct, side, qty, price, err)
	}
	return res.GetOrder()
}

const (
	buy  = commonv1.Side_SIDE_BUY
	sell = commonv1.Side_SIDE_SELL
)

// l2 is a book kept from frames, as a client keeps it.
type l2 struct {
	seq        uint64
	bids, asks map[string]string
}

type bookData struct {
	Seq     uint64 `json:"seq"`
	PrevSeq uint64 `json:"prevSeq"`
	Bids    []struct {
		Price    string `json:"price"`
		Quantity string `json:"quantity"`
	} `json:"bids"`
	Asks []struct {
		Price    string `json:"price"`
		Quantity string `json:"quantity"`
	} `json:"asks"`
}

func decodeBook(t testing.TB, f frame) bookData {
	t.Helper()
	var d bookData
	if err := json.Unmarshal(f.Data, &d); err != nil {
		t.Fatalf("book data of %s: %v", f, err)
	}
	return d
}

// apply applies a snapshot or delta frame; a delta must follow the seq.
func (b *l2) apply(t testing.TB, f frame) {
	t.Helper()
	d := decodeBook(t, f)
	switch f.Type {
	case "snapshot":
		b.bids, b.asks = map[string]string{}, map[string]string{}
	case "delta":
		if d.PrevSeq != b.seq {
			t.Fatalf("gap: delta %s after seq %d", f, b.seq)
		}
	default:
		t.Fatalf("book frame of type %q: %s", f.Type, f)
	}
	for _, l := range d.Bids {
		set(b.bids, l.Price, l.Quantity)
	}
	for _, l := range d.Asks {
		set(b.asks, l.Price, l.Quantity)
	}
	b.seq = d.Seq
}

func set(side map[string]string, price, qty string) {
	if strings.Trim(qty, "0.") == "" {
		delete(side, price)
	} else {
		side[price] = qty
	}
}
