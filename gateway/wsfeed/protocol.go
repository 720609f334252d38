package wsfeed

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"connectrpc.com/connect"

	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
)

// channel is a feed a connection subscribes to.
type channel uint8

const (
	chBook channel = iota + 1
	chTrades
	chTicker
	chCandles
	chOrders
	chBalances
	chMark
	chPositions
)

var channelNames = [...]string{chBook: "book", chTrades: "trades", chTicker: "ticker", chCandles: "candles",
	chOrders: "orders", chBalances: "balances", chMark: "mark", chPositions: "positions"}

func (c channel) String() string { return channelNames[c] }

// private reports whether the channel needs an authenticated connection.
func (c channel) private() bool { return c == chOrders || c == chBalances || c == chPositions }

func parseChannel(name string) (channel, bool) {
	for c, n := range channelNames {
		if n != "" && n == name {
			return channel(c), true
		}
	}
	return 0, false
}

// intervals maps the candle interval names of the protocol to the
// service's.
var intervals = []struct {
	name string
	iv   marketdatav1.CandleInterval
}{
	{"1m", marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_MINUTE},
	{"5m", marketdatav1.CandleInterval_CANDLE_INTERVAL_FIVE_MINUTES},
	{"15m", marketdatav1.CandleInterval_CANDLE_INTERVAL_FIFTEEN_MINUTES},
	{"1h", marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_HOUR},
	{"4h", marketdatav1.CandleInterval_CANDLE_INTERVAL_FOUR_HOURS},
	{"1d", marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_DAY},
	{"1w", marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_WEEK},
}

func parseInterval(name string) (marketdatav1.CandleInterval, bool) {
	for _, i := range intervals {
		if i.name == name {
			return i.iv, true
		}
	}
	return 0, false
}

func intervalName(iv marketdatav1.CandleInterval) string {
	for _, i := range intervals {
		if i.iv == iv {
			return i.name
		}
	}
	return ""
}

// key names one upstream feed: a channel of a symbol (for candles with
// its interval), or a private channel of an account.
type key struct {
	ch       channel
	name     string // the symbol, or the account of a private channel
	interval marketdatav1.CandleInterval
}

func (k key) String() string {
	if k.ch == chCandles {
		return k.ch.String() + " " + k.name + " " + intervalName(k.interval)
	}
	if k.ch.private() {
		return k.ch.String()
	}
	return k.ch.String() + " " + k.name
}

// channelSpec is one entry of a subscribe or unsubscribe frame's
// channels, and of their acks.
type channelSpec struct {
	Name     string   `json:"name"`
	Symbols  []string `json:"symbols,omitempty"`
	Depth    *int     `json:"depth,omitempty"`
	Interval string   `json:"interval,omitempty"`
}

// wanted is one subscription a frame asks for.
type wanted struct {
	key   key
	depth int // book snapshot levels a side; 0: all
	spec  int // index of its entry in the frame
}

// request is a parsed client frame.
type request struct {
	Op       string          `json:"op"`
	ReqID    json.RawMessage `json:"req_id"`
	Channels []channelSpec   `json:"channels"`
	Token    string          `json:"token"`
	// An auth frame signed with an API key instead of a token: the key
	// id, the timestamp in milliseconds, and the signature of
	// timestamp + "GET" + "/ws".
	APIKey    string `json:"apiKey"`
	Timestamp int64  `json:"timestamp"`
	Signature string `json:"signature"`
}

// errorf is a protocol error with its code.
func errorf(code connect.Code, format string, args ...any) error {
	return connect.NewError(code, fmt.Errorf(format, args...))
}

var reqIDPattern = regexp.MustCompile(`"req_id"\s*:\s*("(?:[^"\\]|\\.){0,64}"|-?[0-9]{1,20})`)

// parseRequest decodes a client frame. On error the returned request
// still carries the req_id when one could be found, so that the error
// frame names it.
func parseRequest(data []byte) (request, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		var r request
		if m := reqIDPattern.FindSubmatch(data); m != nil {
			r.ReqID = json.RawMessage(bytes.Clone(m[1]))
		}
		return r, errorf(connect.CodeInvalidArgument, "malformed frame: want a JSON object like {\"op\":\"subscribe\",...}")
	}
	var r request
	if id, ok := fields["req_id"]; ok && !bytes.Equal(id, []byte("null")) {
		if !validReqID(id) {
			return r, errorf(connect.CodeInvalidArgument, "req_id must be a string of at most 64 bytes or an integer")
		}
		r.ReqID = id
	}
	if err := json.Unmarshal(fields["op"], &r.Op); err != nil || r.Op == "" {
		return r, errorf(connect.CodeInvalidArgument, "op must be a string: subscribe, unsubscribe, auth or ping")
	}
	if raw, ok := fields["channels"]; ok {
		if err := json.Unmarshal(raw, &r.Channels); err != nil {
			return r, errorf(connect.CodeInvalidArgument,
				`channels must be a list of {"name":"book","symbols":["BTCUSDT"]} objects`)
		}
	}
	for name, dst := range map[string]*string{"token": &r.Token, "apiKey": &r.APIKey, "signature": &r.Signature} {
		if raw, ok := fields[name]; ok {
			if err := json.Unmarshal(raw, dst); err != nil || len(*dst) > maxCredentialLen {
				return r, errorf(connect.CodeInvalidArgument, "%s must be a string of at most %d bytes", name, maxCredentialLen)
			}
		}
	}
	if raw, ok := fields["timestamp"]; ok {
		if err := json.Unmarshal(raw, &r.Timestamp); err != nil || r.Timestamp <= 0 {
			return r, errorf(connect.CodeInvalidArgument, "timestamp must be milliseconds since the epoch")
		}
	}
	return r, nil
}

// maxCredentialLen bounds a token, key id or signature in a frame.
const maxCredentialLen = 4096

func validReqID(id json.RawMessage) bool {
	var s string
	if json.Unmarshal(id, &s) == nil {
		return len(s) <= 64
	}
	var n json.Number
	if json.Unmarshal(id, &n) == nil {
		_, err := n.Int64()
		return err == nil
	}
	return false
}

// maxSymbolLen bounds a symbol or account id.
const maxSymbolLen = 64

// validSymbol accepts the characters instrument symbols are made of.
func validSymbol(s string) bool {
	if s == "" || len(s) > maxSymbolLen {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' && r != '_' && r != '.'
	}) < 0
}

// wants expands a subscribe or unsubscribe frame's channels into the
// subscriptions it names, checking the whole frame first. account is the
// connection's account ("" before auth); subscribe is false for an
// unsubscribe (which needs neither symbols to exist nor auth).
func wants(specs []channelSpec, account string, authed, subscribe bool) ([]wanted, error) {
	if len(specs) == 0 {
		return nil, errorf(connect.CodeInvalidArgument, `channels is required: [{"name":"book","symbols":["BTCUSDT"]}]`)
	}
	var out []wanted
	seen := map[key]int{}
	add := func(w wanted) {
		if i, ok := seen[w.key]; ok {
			out[i] = w
			return
		}
		seen[w.key] = len(out)
		out = append(out, w)
	}
	for i, s := range specs {
		ch, ok := parseChannel(s.Name)
		if !ok {
			return nil, errorf(connect.CodeInvalidArgument, "unknown channel %q: want book, trades, ticker, candles, mark, orders, balances or positions", s.Name)
		}
		if ch.private() {
			switch {
			case !authed && subscribe:
				return nil, errorf(connect.CodeUnauthenticated, "channel %s needs an auth frame first", ch)
			case account == "" && subscribe:
				return nil, errorf(connect.CodePermissionDenied, "channel %s: the principal has no trading account", ch)
			}
			add(wanted{key: key{ch: ch, name: account}, spec: i})
			continue
		}
		w := wanted{key: key{ch: ch}, spec: i}
		if s.Depth != nil {
			if *s.Depth < 0 {
				return nil, errorf(connect.CodeInvalidArgument, "depth must not be negative")
			}
			w.depth = *s.Depth
		}
		if ch == chCandles {
			w.key.interval = marketdatav1.CandleInterval_CANDLE_INTERVAL_ONE_MINUTE
			if s.Interval != "" {
				if w.key.interval, ok = parseInterval(s.Interval); !ok {
					return nil, errorf(connect.CodeInvalidArgument, "unknown interval %q: want 1m, 5m, 15m, 1h, 4h, 1d or 1w", s.Interval)
				}
			}
		}
		if len(s.Symbols) == 0 {
			return nil, errorf(connect.CodeInvalidArgument, "channel %s needs symbols", ch)
		}
		for _, sym := range s.Symbols {
			if !validSymbol(sym) {
				return nil, errorf(connect.CodeInvalidArgument, "symbol %q is not a valid instrument symbol", sym)
			}
			w.key.name = sym
			add(w)
		}
	}
	return out, nil
}

// ackSpecs lists the subscriptions in the frames' shape, one entry per
// channel entry of the request, keeping the request's order.
func ackSpecs(ws []wanted) []channelSpec {
	var out []channelSpec
	index := map[int]int{}
	for _, w := range ws {
		i, ok := index[w.spec]
		if !ok {
			i = len(out)
			index[w.spec] = i
			s := channelSpec{Name: w.key.ch.String()}
			if w.key.ch == chBook && w.depth > 0 {
				s.Depth = &w.depth
			}
			if w.key.ch == chCandles {
				s.Interval = intervalName(w.key.interval)
			}
			out = append(out, s)
		}
		if !w.key.ch.private() {
			out[i].Symbols = append(out[i].Symbols, w.key.name)
		}
	}
	return out
}

// Server frames of one connection (the data frames are built in
// frames.go).

type ackFrame struct {
	Op       string          `json:"op"`
	Channels []channelSpec   `json:"channels,omitempty"`
	Account  string          `json:"account,omitempty"`
	ReqID    json.RawMessage `json:"req_id,omitempty"`
}

type errorFrame struct {
	Op      string          `json:"op"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	ReqID   json.RawMessage `json:"req_id,omitempty"`
}

type pongFrame struct {
	Op    string          `json:"op"`
	Time  string          `json:"time"`
	ReqID json.RawMessage `json:"req_id,omitempty"`
}

type heartbeatFrame struct {
	Op      string `json:"op"`
	Counter uint64 `json:"counter"`
	Time    string `json:"time"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only plain structs of strings and numbers come here
		return []byte(`{"op":"error","code":"internal","message":"internal error"}`)
	}
	return b
}

func encodeAck(op string, specs []channelSpec, account string, reqID json.RawMessage) []byte {
	return mustJSON(ackFrame{Op: op, Channels: specs, Account: account, ReqID: reqID})
}

// encodeError is the error frame of err: its Connect code name and
// message (an error that is not a Connect error is internal, its text
// kept out of the frame).
func encodeError(err error, reqID json.RawMessage) []byte {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		ce = connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	return mustJSON(errorFrame{Op: "error", Code: ce.Code().String(), Message: ce.Message(), ReqID: reqID})
}

func encodePong(now time.Time, reqID json.RawMessage) []byte {
	return mustJSON(pongFrame{Op: "pong", Time: now.UTC().Format(time.RFC3339Nano), ReqID: reqID})
}

func encodeHeartbeat(n uint64, now time.Time) []byte {
	return mustJSON(heartbeatFrame{Op: "heartbeat", Counter: n, Time: now.UTC().Format(time.RFC3339Nano)})
}
