package main

import (
	"compress/gzip"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/internal/polltest"
)

// collectedSpan is what the test collector keeps of a span.
type collectedSpan struct {
	name, traceID, service string
}

// otlpCollector is an OTLP/HTTP trace receiver (protobuf, as the exporter
// sends by default) that keeps every span it is sent.
type otlpCollector struct {
	mu    sync.Mutex
	spans []collectedSpan
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		http.Error(w, "not an OTLP trace export", http.StatusNotFound)
		return
	}
	body := io.Reader(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var req coltracepb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, collectedSpan{name: s.GetName(), traceID: hex.EncodeToString(s.GetTraceId()), service: service})
			}
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// has reports whether a span named name was collected.
func (c *otlpCollector) has(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.name == name {
			return true
		}
	}
	return false
}

// inTrace lists the names of the spans of trace id.
func (c *otlpCollector) inTrace(id string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	names := map[string]string{}
	for _, s := range c.spans {
		if s.traceID == id {
			names[s.name] = s.service
		}
	}
	return names
}

// postTraced POSTs a JSON body to url (as token's account when token is
// set) and returns the answer's status and headers.
func postTraced(t *testing.T, url, token, body string) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// With --otlp-endpoint, an order placed over REST is one trace at the
// collector: the gateway's request, the order service's publish of the
// submit, the engine's handling of it and publish of its events, the
// wallet's and order service's handling of those. The trace id is the
// answer's X-Trace-Id. Spans are exported in batches every 5 s.
func TestServeExportsTraces(t *testing.T) {
	t.Parallel()
	collector := &otlpCollector{}
	srv := httptest.NewServer(collector)
	t.Cleanup(srv.Close)
	cfg := testServeConfig(t)
	cfg.OTLPEndpoint = srv.URL
	ep, stop := startServe(t, cfg)
	crossOrders(t, "http://"+ep.GRPC) // funds alice with USDT, bob with BTC; trades once

	status, header := postTraced(t, "http://"+ep.HTTP+"/v1/orders", "alice",
		`{"instrumentId":"BTCUSDT","side":"buy","type":"limit","quantity":"0.01","price":"40000"}`)
	trace := header.Get("X-Trace-Id")
	if status != http.StatusCreated || len(trace) != 32 {
		t.Fatalf("POST /v1/orders: %d, X-Trace-Id %q", status, trace)
	}
	want := []string{
		"POST /v1/orders",
		"send engine.order.v1", "process engine.order.v1",
		"send engine.event.v1", "process engine.event.v1",
	}
	polltest.Until(t, "the order's trace at the collector", func() error {
		got := collector.inTrace(trace)
		for _, name := range want {
			if got[name] != "tradex" {
				return fmt.Errorf("no span %q of service tradex in trace %s: %v", name, trace, got)
			}
		}
		return nil
	})
	// A Connect-Web call through the gateway: its handler's span is in the
	// request's trace.
	cstatus, cheader := postTraced(t, "http://"+ep.HTTP+"/tradex.marketdata.v1.MarketDataService/GetBook", "", `{"instrumentId":"BTCUSDT"}`)
	ctrace := cheader.Get("X-Trace-Id")
	if cstatus != http.StatusOK || len(ctrace) != 32 {
		t.Fatalf("Connect-Web GetBook: %d, X-Trace-Id %q", cstatus, ctrace)
	}
	polltest.Until(t, "the Connect-Web call's trace at the collector", func() error {
		got := collector.inTrace(ctrace)
		for _, name := range []string{"POST /tradex.marketdata.v1.MarketDataService/", "tradex.marketdata.v1.MarketDataService/GetBook"} {
			if _, ok := got[name]; !ok {
				return fmt.Errorf("no span %q in trace %s: %v", name, ctrace, got)
			}
		}
		return nil
	})
	// Connect calls on the internal port are spans too (the deposits and
	// orders of crossOrders).
	if !collector.has("tradex.order.v1.OrderService/PlaceOrder") {
		t.Error("no span of a Connect call to PlaceOrder")
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
