package kafkabridge

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/proto"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
)

// With the Confluent wire format, exported values carry the topic's schema
// id (the one the registry endpoints serve) before the payload, and
// imported values in that format are stored without their header, or
// dead-lettered when their id is not the topic's.
func TestConfluentWireFormatBothWays(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	if err := streams.PublishSchemas(t.Context(), f.js, f.client.Catalog()); err != nil {
		t.Fatal(err)
	}
	idx, err := schemaregistry.Build(t.Context(), f.js)
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.config(Route{exportTopic, Export}, Route{importTopic, Import})
	cfg.WireFormat = WireConfluent // the bridge follows the registry itself
	f.run(t, cfg)
	f.publishEvents(t.Context(), t, []string{"BTCUSDT"}, 3)
	polltest.Until(t, "export caught up", func() error { return f.exportCaughtUp(t.Context(), DefaultName) })

	wantID, err := idx.TopicID(exportTopic)
	if err != nil {
		t.Fatal(err)
	}
	recs := f.kafkaRecords(t, exportTopic)
	if len(recs) != 3 {
		t.Fatalf("%d records exported, want 3", len(recs))
	}
	for i, r := range recs {
		id, _, payload, err := schemaregistry.ParseHeader(r.Value)
		if err != nil || id != wantID {
			t.Fatalf("record %d: schema id %d (%v), want %d", i, id, err, wantID)
		}
		var ev enginev1.EngineEvent
		if err := proto.Unmarshal(payload, &ev); err != nil || ev.GetEventId() != fmt.Sprintf("BTCUSDT-%d", i) {
			t.Errorf("record %d: %v (%v)", i, &ev, err)
		}
	}

	payload, err := proto.Marshal(&enginev1.OrderCommand{CommandId: "wire-1", InstrumentId: "ETHUSDT"})
	if err != nil {
		t.Fatal(err)
	}
	good, err := idx.Encode(importTopic, payload)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := idx.Encode(exportTopic, payload) // the engine event's schema id on the order topic
	if err != nil {
		t.Fatal(err)
	}
	f.produce(t, &kgo.Record{Topic: importTopic, Key: []byte("ETHUSDT"), Value: good},
		&kgo.Record{Topic: importTopic, Key: []byte("ETHUSDT"), Value: wrong})
	polltest.Until(t, "one stored, one dead-lettered", func() error {
		letters, err := f.client.DLQ().List(t.Context(), importTopic, streams.DLQFilter{})
		if err != nil {
			return err
		}
		if len(letters) != 1 || len(f.streamMessages(t, importTopic)) != 1 {
			return errors.New("not yet")
		}
		if !strings.Contains(letters[0].Reason, "wire format") {
			return fmt.Errorf("reason %q, want it to name the wire format", letters[0].Reason)
		}
		return nil
	})
	var cmd enginev1.OrderCommand
	if err := proto.Unmarshal(f.streamMessages(t, importTopic)[0].Data, &cmd); err != nil || cmd.GetCommandId() != "wire-1" {
		t.Errorf("stored %v (%v), want the payload without its header", &cmd, err)
	}
}
