package embedded

import (
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkStoreEncryption publishes 256-byte messages into an R1 file
// stream on a server with a plain store (the baseline, same run) and with
// each cipher, under both sync policies, one acknowledged publish at a
// time ("sync") and with 256 in flight ("async").
// docs/benchmarks.md quotes the ratios to the plain store.
func BenchmarkStoreEncryption(b *testing.B) {
	data := make([]byte, 256)
	_, _ = rand.Read(data)
	for _, sync := range []SyncPolicy{SyncAlways, SyncPeriodic} {
		for _, enc := range []*Encryption{nil, {Key: testKey, Cipher: CipherAES}, {Key: testKey, Cipher: CipherChaCha}} {
			store := "plain"
			if enc != nil {
				store = enc.Cipher.String()
			}
			b.Run(fmt.Sprintf("sync=%s/store=%s", sync, store), func(b *testing.B) {
				s, err := Start(b.Context(), Options{StoreDir: b.TempDir(), Port: NoListener, Sync: sync, Encryption: enc})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Shutdown(b.Context()) })
				nc, err := s.Connect()
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(nc.Close)
				js, err := jetstream.New(nc)
				if err != nil {
					b.Fatal(err)
				}
				b.Run("op=publish-sync", func(b *testing.B) { benchPublish(b, js, data, 1) })
				b.Run("op=publish-async", func(b *testing.B) { benchPublish(b, js, data, 256) })
			})
		}
	}
}

// benchPublish publishes b.N messages into a fresh stream with window of
// them in flight, every one acknowledged before the timer stops, then
// reads them all back (not timed as publishing: reported as read-ns/msg).
func benchPublish(b *testing.B, js jetstream.JetStream, data []byte, window int) {
	name := fmt.Sprintf("BENCH%d", window)
	_ = js.DeleteStream(b.Context(), name)
	if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"}, Storage: jetstream.FileStorage}); err != nil {
		b.Fatal(err)
	}
	subject := name + ".x"
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	var acks []jetstream.PubAckFuture
	for i := range b.N {
		if window == 1 {
			if _, err := js.Publish(b.Context(), subject, data); err != nil {
				b.Fatal(err)
			}
			continue
		}
		f, err := js.PublishAsync(subject, data)
		if err != nil {
			b.Fatal(err)
		}
		acks = append(acks, f)
		if len(acks) == window || i == b.N-1 {
			for _, f := range acks {
				select {
				case <-f.Ok():
				case err := <-f.Err():
					b.Fatal(err)
				}
			}
			acks = acks[:0]
		}
	}
	b.StopTimer()
}
