package wsfeed

import (
	"encoding/json"
	"testing"

	"connectrpc.com/connect"
)

func TestParseRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, frame string
		op, reqID   string
		code        connect.Code // 0: no error
	}{
		{"seed frame", `{"op":"subscribe","channels":[{"name":"book","symbols":["BTCUSDT-PERP"]}]}`, "subscribe", "", 0},
		{"string req_id", `{"op":"ping","req_id":"abc"}`, "ping", `"abc"`, 0},
		{"number req_id", `{"op":"ping","req_id":7}`, "ping", "7", 0},
		{"null req_id", `{"op":"ping","req_id":null}`, "ping", "", 0},
		{"object req_id", `{"op":"ping","req_id":{}}`, "", "", connect.CodeInvalidArgument},
		{"truncated keeps req_id", `{"req_id":"r9","op":"subscribe","channels":[{`, "", `"r9"`, connect.CodeInvalidArgument},
		{"not JSON", `hello`, "", "", connect.CodeInvalidArgument},
		{"null", `null`, "", "", connect.CodeInvalidArgument},
		{"op not a string", `{"op":1,"req_id":"x"}`, "", `"x"`, connect.CodeInvalidArgument},
		{"token not a string", `{"op":"auth","token":5}`, "auth", "", connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := parseRequest([]byte(tt.frame))
			if (tt.code == 0) != (err == nil) || err != nil && connect.CodeOf(err) != tt.code {
				t.Errorf("error %v; want code %v", err, tt.code)
			}
			if tt.code == 0 && r.Op != tt.op {
				t.Errorf("op %q; want %q", r.Op, tt.op)
			}
			if string(r.ReqID) != tt.reqID {
				t.Errorf("req_id %s; want %s", r.ReqID, tt.reqID)
			}
		})
	}
}

func TestWants(t *testing.T) {
	t.Parallel()
	spec := func(s string) []channelSpec {
		var cs []channelSpec
		if err := json.Unmarshal([]byte(s), &cs); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	tests := []struct {
		name, channels string
		authed         bool
		account        string
		want           int
		code           connect.Code
	}{
		{"two symbols", `[{"name":"book","symbols":["A","B"],"depth":5}]`, false, "", 2, 0},
		{"duplicates merge", `[{"name":"trades","symbols":["A","A"]},{"name":"trades","symbols":["A"]}]`, false, "", 1, 0},
		{"candle intervals are distinct", `[{"name":"candles","symbols":["A"]},{"name":"candles","symbols":["A"],"interval":"1h"}]`, false, "", 2, 0},
		{"private after auth", `[{"name":"orders"},{"name":"balances","symbols":["ignored"]}]`, true, "acct", 2, 0},
		{"private before auth", `[{"name":"orders"}]`, false, "", 0, connect.CodeUnauthenticated},
		{"private without account", `[{"name":"balances"}]`, true, "", 0, connect.CodePermissionDenied},
		{"no channels", `[]`, false, "", 0, connect.CodeInvalidArgument},
		{"unknown channel", `[{"name":"kline","symbols":["A"]}]`, false, "", 0, connect.CodeInvalidArgument},
		{"empty symbol", `[{"name":"book","symbols":[""]}]`, false, "", 0, connect.CodeInvalidArgument},
		{"bad interval", `[{"name":"candles","symbols":["A"],"interval":"1y"}]`, false, "", 0, connect.CodeInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ws, err := wants(spec(tt.channels), tt.account, tt.authed, true)
			if tt.code != 0 {
				if connect.CodeOf(err) != tt.code {
					t.Errorf("error %v; want %v", err, tt.code)
				}
				return
			}
			if err != nil || len(ws) != tt.want {
				t.Errorf("wants %v, %v; want %d", ws, err, tt.want)
			}
		})
	}
}

func TestFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"error", encodeError(errorf(connect.CodeNotFound, "book X: unknown symbol X"), json.RawMessage(`"1"`)),
			`{"op":"error","code":"not_found","message":"book X: unknown symbol X","req_id":"1"}`},
		{"error without req_id", encodeError(errorf(connect.CodeResourceExhausted, "slow"), nil),
			`{"op":"error","code":"resource_exhausted","message":"slow"}`},
		{"internal error hides its text", encodeError(errGap, nil),
			`{"op":"error","code":"internal","message":"internal error"}`},
		{"ack", encodeAck("subscribed", ackSpecs([]wanted{{key: key{ch: chBook, name: "A"}, depth: 5}, {key: key{ch: chBook, name: "B"}, depth: 5}}), "", json.RawMessage(`7`)),
			`{"op":"subscribed","channels":[{"name":"book","symbols":["A","B"],"depth":5}],"req_id":7}`},
		{"data head", append(appendHead(nil, key{ch: chCandles, name: "A", interval: 4}, typeUpdate), "{}}"...),
			`{"op":"candles","type":"update","symbol":"A","interval":"1h","data":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got) != tt.want {
				t.Errorf("got  %s\nwant %s", tt.got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no queue", func(c *Config) { c.SendQueue = 0 }},
		{"pong wait under ping interval", func(c *Config) { c.PongWait = c.PingInterval }},
		{"backoff max under min", func(c *Config) { c.ReconnectMax = c.ReconnectMin / 2 }},
		{"origin without scheme", func(c *Config) { c.Origins = []string{"app.example"} }},
		{"no frame size", func(c *Config) { c.MaxFrameBytes = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tt.change(&c)
			if c.Validate() == nil {
				t.Error("Validate accepted it")
			}
			if _, err := New(c, Deps{}); err == nil {
				t.Error("New accepted it")
			}
		})
	}
}
