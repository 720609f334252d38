package wallet

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// Engine events stored while the wallet is down are settled in one run
// (read ahead from the first one delivered); the journal entries of each
// still continue its own trace, not the trace of the event whose delivery
// ran the run.
func TestEntriesContinueTheirEventsTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cfg := testConfig()
	w := e.start(cfg)
	deposit(t, w.client, "d1", "alice", "USDT", "100000")
	deposit(t, w.client, "d2", "bob", "BTC", "10")
	const trades = 3
	for i := range trades {
		hold(t, w.client, fmt.Sprint("A", i), "alice", "USDT", "1000")
		hold(t, w.client, fmt.Sprint("B", i), "bob", "BTC", "0.1")
	}
	w.stop()

	eng := newEngine(t, e.js)
	traces := map[string]string{} // engine event id -> trace id
	var last uint64
	for i := range trades {
		sc := trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: trace.TraceID{byte(i + 1), 0xbb}, SpanID: trace.SpanID{byte(i + 1)}, TraceFlags: trace.FlagsSampled,
		})
		eng.ctx = trace.ContextWithSpanContext(t.Context(), sc)
		last = eng.trade("9000.00", "0.10000", fmt.Sprint("A", i), "alice", commonv1.Side_SIDE_BUY, "0", fmt.Sprint("B", i), "bob", "0")
		traces[fmt.Sprintf("BTCUSDT-%d", eng.n)] = sc.TraceID().String()
	}
	w = e.start(cfg)
	settled(t, w, last)

	st, err := e.js.Stream(t.Context(), streams.StreamName(streams.TopicBalanceChanged))
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var bc walletv1.BalanceChanged
		if err := proto.Unmarshal(m.Data, &bc); err != nil {
			t.Fatal(err)
		}
		want, ok := traces[bc.GetEngineEventId()]
		if !ok {
			continue // a deposit or hold
		}
		checked++
		if parts := strings.Split(m.Header.Get("traceparent"), "-"); len(parts) != 4 || parts[1] != want {
			t.Errorf("entry %d of event %s: traceparent %q, want trace %s", seq, bc.GetEngineEventId(), m.Header.Get("traceparent"), want)
		}
	}
	if checked < trades {
		t.Fatalf("%d entries caused by the trades, want some of each", checked)
	}
}
