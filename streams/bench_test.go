//go:build unix

package streams_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/streams"
)

// The benchmarks below publish and consume 256-byte payloads through this
// package and through raw nats.go on the same embedded server (in-process
// connection), so that every library figure has a raw baseline measured in
// the same run. docs/benchmarks.md explains how to run and read them.
//
// Publish cases count one op per message. Windowed cases (async, atomic)
// wait for the acks of the last, partial window with the timer running, so
// every message counted is acknowledged. A consume op is draining the whole
// pre-filled topic with a fresh durable consumer, consumer creation included.
const (
	benchPayloadSize = 256
	benchAsyncWindow = 256   // messages in flight before waiting for their acks
	benchConsumeMsgs = 20000 // messages a consume op drains
	benchPrefillSize = 500   // atomic batch size used to pre-fill the consume topic
	benchTimeout     = 5 * time.Minute
	benchPublish     = "bench.publish.v1"
	benchConsume     = "bench.consume.v1"
)

// benchKeys are the partition keys the benchmarks rotate through.
func benchKeys() []string {
	return []string{"BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BTCUSDT-PERP", "ETHUSDT-PERP", "SOLUSDT-PERP", "XRPUSDT-PERP"}
}

// benchEnv is one embedded server with the benchmark topics provisioned,
// shared by the raw and library cases of one durability setting.
type benchEnv struct {
	js       jetstream.JetStream // raw nats.go handle
	pubJS    jetstream.JetStream // the library's handle, same connection and options
	catalog  *streams.Catalog
	pub      *streams.Publisher
	payload  *wrapperspb.BytesValue
	data     []byte   // payload, marshaled once: what raw cases send
	keys     []string // partition keys
	subjects []string // benchPublish subjects of keys
	mesh     nats.Header
}

func newBenchEnv(b *testing.B, sync embedded.SyncPolicy) *benchEnv {
	b.Helper()
	srv := embeddedtest.New(b, embeddedtest.WithSync(sync))
	catalog, err := streams.NewCatalog(
		streams.Topic{Name: benchPublish, Payload: &wrapperspb.BytesValue{}, Key: "instrument",
			Producers: []string{"bench"}, Consumers: []string{"bench"}, Profile: streams.Financial},
		streams.Topic{Name: benchConsume, Payload: &wrapperspb.BytesValue{}, Key: "instrument",
			Producers: []string{"bench"}, Consumers: []string{"bench"}, Profile: streams.Financial},
	)
	if err != nil {
		b.Fatal(err)
	}
	raw := make([]byte, benchPayloadSize)
	if _, err := rand.Read(raw); err != nil {
		b.Fatal(err)
	}
	payload := wrapperspb.Bytes(raw)
	data, err := proto.Marshal(payload)
	if err != nil {
		b.Fatal(err)
	}
	pubJS, err := jetstream.New(srv.Conn())
	if err != nil {
		b.Fatal(err)
	}
	env := &benchEnv{
		js: srv.JetStream(), pubJS: pubJS, catalog: catalog,
		pub:     streams.NewPublisher(pubJS, catalog),
		payload: payload, data: data, keys: benchKeys(),
		mesh: meshHeaders(),
	}
	for _, k := range env.keys {
		env.subjects = append(env.subjects, benchPublish+"."+k)
	}
	ctx, cancel := context.WithTimeout(b.Context(), benchTimeout)
	defer cancel()
	if err := streams.EnsureStreams(ctx, env.js, catalog); err != nil {
		b.Fatal(err)
	}
	return env
}

// meshHeaders are the headers the library sets on a message of
// benchPublish, with values of the same size (ids are replaced per message).
func meshHeaders() nats.Header {
	h := nats.Header{}
	id := nuid.Next()
	h.Set(streams.HeaderMsgID, id)
	h.Set(streams.HeaderCEID, id)
	h.Set(streams.HeaderCEType, "google.protobuf.BytesValue")
	h.Set(streams.HeaderCESource, "tradex")
	h.Set(streams.HeaderCETime, time.Now().UTC().Format(time.RFC3339Nano))
	h.Set(streams.HeaderCESpecVersion, "1.0")
	h.Set(streams.HeaderContentType, streams.ContentTypeProtobuf)
	return h
}

// rawMeshMsg is a raw message carrying the library's header set, to tell
// the cost of the headers on the wire and in the store from the library's
// own work.
func (e *benchEnv) rawMeshMsg(i int) *nats.Msg {
	h := maps.Clone(e.mesh)
	id := nuid.Next()
	h[streams.HeaderMsgID] = []string{id}
	h[streams.HeaderCEID] = []string{id}
	return &nats.Msg{Subject: e.subjects[i%len(e.subjects)], Header: h, Data: e.data}
}

// BenchmarkStreams runs every case under both durability settings, each
// setting on its own embedded server shared by its raw and library cases.
func BenchmarkStreams(b *testing.B) {
	for _, sync := range []embedded.SyncPolicy{embedded.SyncPeriodic, embedded.SyncAlways} {
		b.Run("fsync="+sync.String(), func(b *testing.B) {
			env := newBenchEnv(b, sync)
			b.Run("op=publish-sync", env.benchPublishSync)
			b.Run("op=publish-async", env.benchPublishAsync)
			b.Run("op=publish-atomic100", env.benchPublishAtomic(100))
			b.Run("op=publish-atomic1000", env.benchPublishAtomic(1000))
			b.Run("op=consume", env.benchConsume)
		})
	}
}

// benchPublishSync publishes one message at a time, waiting for each ack.
func (e *benchEnv) benchPublishSync(b *testing.B) {
	b.Run("impl=raw-bare", func(b *testing.B) {
		e.runWindowed(b, 1, func(ctx context.Context, i int) error {
			_, err := e.js.Publish(ctx, e.subjects[i%len(e.subjects)], e.data)
			return err
		}, nil)
	})
	b.Run("impl=raw-msgid", func(b *testing.B) {
		e.runWindowed(b, 1, func(ctx context.Context, i int) error {
			_, err := e.js.Publish(ctx, e.subjects[i%len(e.subjects)], e.data, jetstream.WithMsgID(nuid.Next()))
			return err
		}, nil)
	})
	b.Run("impl=raw-meshheaders", func(b *testing.B) {
		e.runWindowed(b, 1, func(ctx context.Context, i int) error {
			_, err := e.js.PublishMsg(ctx, e.rawMeshMsg(i))
			return err
		}, nil)
	})
	b.Run("impl=library", func(b *testing.B) {
		e.runWindowed(b, 1, func(ctx context.Context, i int) error {
			_, err := e.pub.Publish(ctx, benchPublish, e.keys[i%len(e.keys)], e.payload)
			return err
		}, nil)
	})
}

// benchPublishAsync keeps up to benchAsyncWindow messages in flight, then
// waits for all of their acks.
func (e *benchEnv) benchPublishAsync(b *testing.B) {
	b.Run("impl=raw-bare", func(b *testing.B) {
		var w futures
		e.runWindowed(b, benchAsyncWindow, func(_ context.Context, i int) error {
			return w.add(e.js.PublishAsync(e.subjects[i%len(e.subjects)], e.data))
		}, w.wait)
	})
	b.Run("impl=raw-msgid", func(b *testing.B) {
		var w futures
		e.runWindowed(b, benchAsyncWindow, func(_ context.Context, i int) error {
			return w.add(e.js.PublishAsync(e.subjects[i%len(e.subjects)], e.data, jetstream.WithMsgID(nuid.Next())))
		}, w.wait)
	})
	b.Run("impl=raw-meshheaders", func(b *testing.B) {
		var w futures
		e.runWindowed(b, benchAsyncWindow, func(_ context.Context, i int) error {
			return w.add(e.js.PublishMsgAsync(e.rawMeshMsg(i)))
		}, w.wait)
	})
	b.Run("impl=library", func(b *testing.B) {
		var pending []*streams.PendingAck
		e.runWindowed(b, benchAsyncWindow, func(ctx context.Context, i int) error {
			a, err := e.pub.PublishAsync(ctx, benchPublish, e.keys[i%len(e.keys)], e.payload)
			pending = append(pending, a)
			return err
		}, func(ctx context.Context) error {
			defer func() { pending = pending[:0] }()
			for _, a := range pending {
				if _, err := a.Wait(ctx); err != nil {
					return err
				}
			}
			return nil
		})
	})
	b.Run("impl=library-batch", func(b *testing.B) {
		var records []streams.Record
		e.runWindowed(b, benchAsyncWindow, e.addRecord(&records), func(ctx context.Context) error {
			defer func() { records = records[:0] }()
			_, err := e.pub.PublishBatch(ctx, records)
			return err
		})
	})
}

// benchPublishAtomic stores size messages all or nothing per batch
// (JetStream atomic batch publish).
func (e *benchEnv) benchPublishAtomic(size int) func(*testing.B) {
	return func(b *testing.B) {
		raw := func(name string, msg func(i int) *nats.Msg) {
			b.Run(name, func(b *testing.B) {
				var msgs []*nats.Msg
				e.runWindowed(b, size, func(_ context.Context, i int) error {
					msgs = append(msgs, msg(i))
					return nil
				}, func(ctx context.Context) error {
					defer func() { msgs = msgs[:0] }()
					_, err := jetstreamext.PublishMsgBatch(ctx, e.js, msgs)
					return err
				})
			})
		}
		raw("impl=raw-bare", func(i int) *nats.Msg {
			return &nats.Msg{Subject: e.subjects[i%len(e.subjects)], Header: nats.Header{}, Data: e.data}
		})
		raw("impl=raw-msgid", func(i int) *nats.Msg {
			h := nats.Header{jetstream.MsgIDHeader: []string{nuid.Next()}}
			return &nats.Msg{Subject: e.subjects[i%len(e.subjects)], Header: h, Data: e.data}
		})
		raw("impl=raw-meshheaders", e.rawMeshMsg)
		b.Run("impl=library", func(b *testing.B) {
			var records []streams.Record
			e.runWindowed(b, size, e.addRecord(&records), func(ctx context.Context) error {
				defer func() { records = records[:0] }()
				_, _, err := e.pub.PublishAtomic(ctx, records)
				return err
			})
		})
	}
}

// addRecord returns a step that appends the i-th record to *records.
func (e *benchEnv) addRecord(records *[]streams.Record) func(context.Context, int) error {
	return func(_ context.Context, i int) error {
		*records = append(*records, streams.Record{Topic: benchPublish, Key: e.keys[i%len(e.keys)], Msg: e.payload})
		return nil
	}
}

// futures collects raw async publishes and waits for their acks.
type futures []jetstream.PubAckFuture

func (w *futures) add(f jetstream.PubAckFuture, err error) error {
	if err == nil {
		*w = append(*w, f)
	}
	return err
}

func (w *futures) wait(ctx context.Context) error {
	defer func() { *w = (*w)[:0] }()
	for _, f := range *w {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// runWindowed measures publishing to a fresh benchPublish stream: step
// sends message i, and every window messages flush (if not nil) waits for
// what is outstanding. A last, partial window is flushed with the timer
// running. It checks that the stream then holds every message.
func (e *benchEnv) runWindowed(b *testing.B, window int, step func(ctx context.Context, i int) error, flush func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(b.Context(), benchTimeout)
	defer cancel()
	e.resetStream(ctx, b, benchPublish)
	if flush == nil {
		flush = func(context.Context) error { return nil }
	}
	i, sent := 0, uint64(0)
	cpu := cpuTime(b)
	for b.Loop() {
		if err := step(ctx, i); err != nil {
			b.Fatalf("message %d: %v", i, err)
		}
		i++
		sent++
		if i%window == 0 {
			if err := flush(ctx); err != nil {
				b.Fatalf("window ending at %d: %v", i, err)
			}
		}
	}
	if i%window != 0 {
		b.StartTimer()
		if err := flush(ctx); err != nil {
			b.Fatalf("last window: %v", err)
		}
		b.StopTimer()
	}
	reportRate(b, b.N, cpu)
	e.checkStored(ctx, b, benchPublish, sent)
}

// benchConsume drains benchConsumeMsgs pre-filled messages per op.
func (e *benchEnv) benchConsume(b *testing.B) {
	e.prefill(b)
	b.Run("impl=raw", func(b *testing.B) {
		e.runConsume(b, "raw", func(ctx context.Context, name string) (func(), error) {
			jc, err := e.js.CreateConsumer(ctx, streams.StreamName(benchConsume), jetstream.ConsumerConfig{
				Durable:       name,
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       30 * time.Second,
				MaxDeliver:    -1,
				MaxAckPending: 1000,
				FilterSubject: benchConsume + ".>",
				DeliverPolicy: jetstream.DeliverAllPolicy,
			})
			if err != nil {
				return nil, err
			}
			it, err := jc.Messages(jetstream.PullMaxMessages(256))
			if err != nil {
				return nil, err
			}
			for range benchConsumeMsgs {
				m, err := it.Next(jetstream.NextContext(ctx))
				if err != nil {
					it.Stop()
					return nil, err
				}
				if err := m.Ack(); err != nil {
					it.Stop()
					return nil, err
				}
			}
			return it.Stop, nil
		})
	})
	b.Run("impl=library", func(b *testing.B) {
		e.runConsume(b, "library", func(ctx context.Context, name string) (func(), error) {
			var seen atomic.Int64
			done := make(chan struct{})
			c, err := streams.Consume(ctx, streams.NewClient(e.pubJS, e.catalog), benchConsume, streams.ConsumerConfig{Name: name},
				func(context.Context, *streams.Message[*wrapperspb.BytesValue]) error {
					if seen.Add(1) == benchConsumeMsgs {
						close(done)
					}
					return nil
				})
			if err != nil {
				return nil, err
			}
			stop := func() { _ = c.Stop(ctx) }
			select {
			case <-done:
				return stop, nil
			case <-ctx.Done():
				stop()
				return nil, ctx.Err()
			}
		})
	})
}

// runConsume measures drain, which creates durable consumer name, takes
// and acknowledges every message of benchConsume and returns a function
// that stops it. An op ends when the broker has every ack.
func (e *benchEnv) runConsume(b *testing.B, impl string, drain func(ctx context.Context, name string) (stop func(), err error)) {
	ctx, cancel := context.WithTimeout(b.Context(), benchTimeout)
	defer cancel()
	stream := streams.StreamName(benchConsume)
	n := 0
	cpu := cpuTime(b)
	for b.Loop() {
		n++
		name := fmt.Sprintf("bench-%s-%d", impl, n)
		stop, err := drain(ctx, name)
		if err != nil {
			b.Fatalf("consumer %s: %v", name, err)
		}
		e.waitAcked(ctx, b, stream, name, benchConsumeMsgs)
		b.StopTimer()
		stop()
		if err := e.js.DeleteConsumer(ctx, stream, name); err != nil {
			b.Fatalf("delete consumer %s: %v", name, err)
		}
		b.StartTimer()
	}
	reportRate(b, b.N*benchConsumeMsgs, cpu)
	b.ReportMetric(benchConsumeMsgs, "msgs/op")
}

// waitAcked polls the consumer until the broker has acknowledgements for
// its first n messages and none is pending.
func (e *benchEnv) waitAcked(ctx context.Context, b *testing.B, stream, name string, n uint64) {
	for {
		c, err := e.js.Consumer(ctx, stream, name)
		if err != nil {
			b.Fatalf("consumer %s: %v", name, err)
		}
		if info := c.CachedInfo(); info.AckFloor.Stream >= n && info.NumAckPending == 0 {
			return
		}
	}
}

// prefill makes benchConsume hold exactly benchConsumeMsgs library messages.
func (e *benchEnv) prefill(b *testing.B) {
	ctx, cancel := context.WithTimeout(b.Context(), benchTimeout)
	defer cancel()
	e.resetStream(ctx, b, benchConsume)
	records := make([]streams.Record, 0, benchPrefillSize)
	for i := range benchConsumeMsgs {
		records = append(records, streams.Record{Topic: benchConsume, Key: e.keys[i%len(e.keys)], Msg: e.payload})
		if len(records) == cap(records) || i == benchConsumeMsgs-1 {
			if _, _, err := e.pub.PublishAtomic(ctx, records); err != nil {
				b.Fatalf("prefill: %v", err)
			}
			records = records[:0]
		}
	}
	e.checkStored(ctx, b, benchConsume, benchConsumeMsgs)
}

// resetStream deletes topic's stream and provisions it again, empty.
func (e *benchEnv) resetStream(ctx context.Context, b *testing.B, topic string) {
	b.Helper()
	if err := e.js.DeleteStream(ctx, streams.StreamName(topic)); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		b.Fatalf("delete stream: %v", err)
	}
	if err := streams.EnsureStreams(ctx, e.js, e.catalog); err != nil {
		b.Fatal(err)
	}
}

// checkStored fails unless topic's stream holds exactly n messages.
func (e *benchEnv) checkStored(ctx context.Context, b *testing.B, topic string, n uint64) {
	b.Helper()
	s, err := e.js.Stream(ctx, streams.StreamName(topic))
	if err != nil {
		b.Fatal(err)
	}
	if got := s.CachedInfo().State.Msgs; got != n {
		b.Fatalf("stream %s holds %d messages, want %d", s.CachedInfo().Config.Name, got, n)
	}
}

// reportRate reports msgs messages over the measured time as msgs/s, and
// the CPU time the process (client and in-process server) spent per
// message since cpu as cpu-ns/msg: on a shared machine, time stolen by
// other tenants inflates ns/op but not the CPU time.
func reportRate(b *testing.B, msgs int, cpu time.Duration) {
	b.ReportMetric(float64(msgs)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64((cpuTime(b)-cpu).Nanoseconds())/float64(msgs), "cpu-ns/msg")
}

// cpuTime is the user and system CPU time the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
