package embedded_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
)

// ExampleStart starts an in-process server without a TCP listener,
// publishes two orders to a file-backed stream and reads them back.
func ExampleStart() {
	if err := startPublishRead(context.Background(), os.Stdout); err != nil {
		_, _ = fmt.Fprintln(os.Stdout, "error:", err) // the Output check fails on it
	}
	// Output:
	// 1 orders.new: buy 1 BTC
	// 2 orders.new: sell 2 ETH
	// sync: always
}

func startPublishRead(ctx context.Context, w io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "embedded-example-")
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()

	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Port: embedded.NoListener})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, srv.Shutdown(ctx)) }()

	nc, err := srv.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	_, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "ORDERS",
		Subjects: []string{"orders.>"},
		Storage:  jetstream.FileStorage,
	})
	if err != nil {
		return err
	}
	for _, order := range []string{"buy 1 BTC", "sell 2 ETH"} {
		if _, err := js.Publish(ctx, "orders.new", []byte(order)); err != nil {
			return err
		}
	}

	cons, err := js.OrderedConsumer(ctx, "ORDERS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	batch, err := cons.Fetch(2)
	if err != nil {
		return err
	}
	for msg := range batch.Messages() {
		md, err := msg.Metadata()
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, "%d %s: %s\n", md.Sequence.Stream, msg.Subject(), msg.Data()); err != nil {
			return err
		}
	}
	if err := batch.Error(); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, "sync:", srv.Sync())
	return err
}
