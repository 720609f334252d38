package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
)

// RawConfig is the baseline: synchronous JetStream publishes of 256-byte
// messages with a message id to an R1 file stream (2 minutes of
// duplicate window, like the financial profile) on a server of its own.
type RawConfig struct {
	// Dir is where the server keeps its data (a new folder inside it,
	// removed after): the disk the platform uses, for a fair baseline.
	Dir string
	// Sync is the server's fsync policy.
	Sync embedded.SyncPolicy
	// Publishers publish at once, each waiting for its ack.
	Publishers int
	// Duration is how long they publish.
	Duration time.Duration
	// CPU, when set, reads the CPU time of the process the baseline runs
	// in (its server and its publishers): the result then gives the CPU per
	// message.
	CPU func() (time.Duration, error)
}

// RawResult is the baseline's figures.
type RawResult struct {
	Publishers int     `json:"publishers"`
	Seconds    float64 `json:"seconds"`
	Messages   int64   `json:"messages"`
	PerSecond  float64 `json:"msgsPerSecond"`
	P50        float64 `json:"ackP50Ms"`
	P99        float64 `json:"ackP99Ms"`
	// CPUPerMessage is the process's CPU time (server and publishers) per
	// stored message, in microseconds (0 without RawConfig.CPU).
	CPUPerMessage float64 `json:"cpuPerMessageUs,omitempty"`
}

// Raw runs the baseline.
func Raw(ctx context.Context, cfg RawConfig) (RawResult, error) {
	if cfg.Dir == "" || cfg.Publishers < 1 || cfg.Duration <= 0 {
		return RawResult{}, errors.New("bench: raw: a folder, publishers and a duration are required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	dir, err := os.MkdirTemp(cfg.Dir, "raw-baseline-")
	if err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	srv, err := embedded.Start(ctx, embedded.Options{StoreDir: dir, Port: embedded.NoListener, Sync: cfg.Sync})
	if err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	defer func() { _ = srv.Shutdown(context.WithoutCancel(ctx)) }()
	nc, err := srv.Connect()
	if err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "RAW", Subjects: []string{"raw.>"}, Storage: jetstream.FileStorage, Duplicates: 2 * time.Minute,
	}); err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	cpu0, err := readCPU(cfg.CPU)
	if err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	r, err := publish(ctx, js, cfg)
	if err != nil {
		return RawResult{}, err
	}
	cpu1, err := readCPU(cfg.CPU)
	if err != nil {
		return RawResult{}, fmt.Errorf("bench: raw: %w", err)
	}
	if cfg.CPU != nil && r.Messages > 0 {
		r.CPUPerMessage = float64((cpu1 - cpu0).Microseconds()) / float64(r.Messages)
	}
	return r, nil
}

// publish runs the publishers for cfg.Duration.
func publish(ctx context.Context, js jetstream.JetStream, cfg RawConfig) (RawResult, error) {
	payload := make([]byte, 256)
	var (
		n    atomic.Int64
		mu   sync.Mutex
		acks []time.Duration
		errs []error
		wg   sync.WaitGroup
	)
	lctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	began := time.Now()
	for range cfg.Publishers {
		wg.Go(func() {
			var mine []time.Duration
			for lctx.Err() == nil {
				id := "m" + strconv.FormatInt(n.Add(1), 10)
				start := time.Now()
				if _, err := js.Publish(ctx, "raw.BTCUSDT", payload, jetstream.WithMsgID(id)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				mine = append(mine, time.Since(start))
			}
			mu.Lock()
			acks = append(acks, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(began)
	if err := errors.Join(errs...); err != nil {
		return RawResult{}, fmt.Errorf("bench: raw publish: %w", err)
	}
	slices.Sort(acks)
	return RawResult{Publishers: cfg.Publishers, Seconds: took.Seconds(), Messages: int64(len(acks)),
		PerSecond: float64(len(acks)) / took.Seconds(), P50: percentile(acks, 0.5), P99: percentile(acks, 0.99)}, nil
}
