package kafkabridge

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	enginev1 "github.com/tradex-mesh/tradex/gen/go/tradex/engine/v1"
	"github.com/tradex-mesh/tradex/internal/compattest"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/streams"
)

// compatTool is the path of a Kafka tool this project did not write,
// installed by .ci/run (compattest: skipped where it is missing, except in
// CI).
func compatTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		compattest.Missing(t, name, "apt-get install kcat", err)
	}
	return path
}

// kcat runs kcat with args (stdin empty) and returns its output.
func kcat(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, compatTool(t, "kcat"), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// kcat (librdkafka) reads what the bridge exports, keys and headers
// included, and what it produces is imported with its key and headers.
func TestKcatReadsExportsAndWritesImports(t *testing.T) {
	t.Parallel()
	compatTool(t, "kcat")
	f := newFixture(t)
	broker := f.kafka.ListenAddrs()[0]
	ctx := streams.WithCorrelationID(t.Context(), "corr-kcat")
	f.publishEvents(ctx, t, []string{"BTCUSDT", "ETHUSDT"}, 3)
	f.run(t, f.config(Route{exportTopic, Export}, Route{importTopic, Import}))
	polltest.Until(t, "export caught up", func() error { return f.exportCaughtUp(t.Context(), DefaultName) })

	// kcat consumes: one line per record, its key and headers.
	out := kcat(t, "-C", "-b", broker, "-t", exportTopic, "-o", "beginning", "-e", "-q", "-f", "%k|%h\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 {
		t.Fatalf("kcat read %d records, want 6:\n%s", len(lines), out)
	}
	seen := map[string]int{}
	for _, line := range lines {
		key, headers, ok := strings.Cut(line, "|")
		if !ok {
			t.Fatalf("kcat line %q", line)
		}
		seen[key]++
		if strings.Contains(headers, headerPinID) {
			t.Errorf("record of %s: headers %q carry the delivery's %s", key, headers, headerPinID)
		}
		for _, want := range []string{
			streams.HeaderCEType + "=tradex.engine.v1.EngineEvent",
			streams.HeaderCorrelationID + "=corr-kcat",
			streams.HeaderCEPartitionKey + "=" + key,
			HeaderNatsStream + "=" + streams.StreamName(exportTopic),
		} {
			if !strings.Contains(headers, want) {
				t.Errorf("record of %s: headers %q lack %s", key, headers, want)
			}
		}
	}
	if seen["BTCUSDT"] != 3 || seen["ETHUSDT"] != 3 {
		t.Errorf("keys read by kcat: %v", seen)
	}

	// kcat produces an order command from a file, with a key and a header.
	payload, err := proto.Marshal(&enginev1.OrderCommand{CommandId: "from-kcat", InstrumentId: "SOLUSDT"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "command.bin")
	if err := os.WriteFile(file, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	f.ensureTopic(t, importTopic)
	kcat(t, "-P", "-b", broker, "-t", importTopic, "-k", "SOLUSDT", "-H", streams.HeaderCorrelationID+"=corr-from-kcat", file)
	polltest.Until(t, "the kcat record imported", func() error {
		msgs := f.streamMessages(t, importTopic)
		if len(msgs) != 1 {
			return fmt.Errorf("%d messages stored", len(msgs))
		}
		m := msgs[0]
		var cmd enginev1.OrderCommand
		if err := proto.Unmarshal(m.Data, &cmd); err != nil {
			return err
		}
		if m.Key != "SOLUSDT" || cmd.GetCommandId() != "from-kcat" || m.Header.Get(streams.HeaderCorrelationID) != "corr-from-kcat" {
			return fmt.Errorf("stored %s %v with %v", m.Subject, &cmd, m.Header)
		}
		return nil
	})
}
