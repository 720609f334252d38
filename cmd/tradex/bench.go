package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/internal/bench"
)

// benchReport is what tradex bench prints with --json.
type benchReport struct {
	Raw      *bench.RawResult `json:"raw,omitempty"`
	RawFsync string           `json:"rawSync,omitempty"`
	Load     bench.Result     `json:"load"`
	// SettledOverRaw is settled orders/s over the raw publishes/s.
	SettledOverRaw float64 `json:"settledOverRaw,omitempty"`
}

// runBench is tradex bench: a load generator for a running platform (as
// nats bench is for NATS), with the raw JetStream baseline measured first
// in the same run.
func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tradex bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := bench.Config{Progress: stderr}
	fs.StringVar(&cfg.URL, "url", "http://127.0.0.1:8080", "the gateway of the platform to load")
	bootstrap := fs.String("bootstrap", filepath.Join("data", bootstrapAdminFile), "the bootstrap admin's credential file, to fund the traders (or --admin-email with TRADEX_ADMIN_PASSWORD)")
	fs.StringVar(&cfg.AdminEmail, "admin-email", "", "an admin's email (its password in env TRADEX_ADMIN_PASSWORD) instead of --bootstrap")
	fs.IntVar(&cfg.Traders, "traders", 64, "simulated traders, each registered and funded")
	fs.IntVar(&cfg.Connections, "connections", 16, "requests in flight at once, each on its own connection")
	fs.DurationVar(&cfg.Duration, "duration", 20*time.Second, "how long orders are sent")
	fs.Float64Var(&cfg.Rate, "rate", 0, "orders and cancels per second in all (0: as fast as answered)")
	fs.StringVar(&cfg.Instrument, "instrument", "BTCUSDT", "the instrument traded")
	fs.StringVar(&cfg.Price, "price", "50000", "the middle of the prices (crossing orders within 10 ticks of it, resting ones 1000 ticks away)")
	fs.StringVar(&cfg.Quantity, "quantity", "0.001", "each order's quantity")
	fs.Float64Var(&cfg.Cross, "cross", 0.5, "share of orders placed to trade")
	fs.Float64Var(&cfg.Cancels, "cancels", 0.1, "share of actions that cancel a resting order")
	fs.DurationVar(&cfg.SettleTimeout, "settle-timeout", 5*time.Minute, "how long to wait for settlement to catch up")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pid := fs.Int("pid", 0, "the platform's process id (Linux, on this machine): report its CPU time per settled order")
	rawDir := fs.String("raw-dir", "data", "where the raw baseline's own server keeps its data (the platform's disk); empty: no baseline")
	rawSync := fs.String("raw-sync", "always", "the baseline server's fsync: always or periodic (as the platform's --sync)")
	rawPublishers := fs.Int("raw-publishers", 16, "the baseline's synchronous publishers")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("tradex bench: unexpected arguments %v: %w", fs.Args(), errUsage)
	}
	if err := adminCredential(&cfg, *bootstrap, getenv); err != nil {
		return err
	}
	if *pid > 0 {
		cfg.CPU = func() (time.Duration, error) { return processCPU(*pid) }
	}
	self := os.Getpid()
	cfg.ClientCPU = func() (time.Duration, error) { return processCPU(self) }
	var report benchReport
	if *rawDir != "" {
		sync, err := parseSync(*rawSync)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "raw baseline: %d synchronous publishers, fsync %s, %s\n", *rawPublishers, *rawSync, cfg.Duration)
		raw, err := bench.Raw(ctx, bench.RawConfig{Dir: *rawDir, Sync: sync, Publishers: *rawPublishers, Duration: cfg.Duration, CPU: cfg.ClientCPU})
		if err != nil {
			return err
		}
		report.Raw, report.RawFsync = &raw, *rawSync
	}
	fmt.Fprintf(stderr, "load: %d traders, %d connections, %s against %s\n", cfg.Traders, cfg.Connections, cfg.Duration, cfg.URL)
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	report.Load = res
	if report.Raw != nil && report.Raw.PerSecond > 0 {
		report.SettledOverRaw = res.SettledPerSecond / report.Raw.PerSecond
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(report)
	}
	return printBench(stdout, report)
}

// adminCredential fills the admin's email and password from the flags,
// the environment or the bootstrap file.
func adminCredential(cfg *bench.Config, bootstrap string, getenv func(string) string) error {
	if cfg.AdminEmail != "" {
		cfg.AdminPassword = getenv(envPrefix + "ADMIN_PASSWORD")
		if cfg.AdminPassword == "" {
			return fmt.Errorf("tradex bench: --admin-email needs the password in TRADEX_ADMIN_PASSWORD: %w", errUsage)
		}
		return nil
	}
	b, err := os.ReadFile(bootstrap) //nolint:gosec // the operator names the file
	if err != nil {
		return fmt.Errorf("tradex bench: read the bootstrap admin (--bootstrap, or --admin-email): %w", err)
	}
	var c bootstrapCredential
	if err := json.Unmarshal(b, &c); err != nil {
		return fmt.Errorf("tradex bench: %s: %w", bootstrap, err)
	}
	if c.Email == "" || c.Password == "" {
		return fmt.Errorf("tradex bench: %s is not a bootstrap admin credential (no email or password)", bootstrap)
	}
	cfg.AdminEmail, cfg.AdminPassword = c.Email, c.Password
	return nil
}

func parseSync(s string) (embedded.SyncPolicy, error) {
	switch s {
	case "always":
		return embedded.SyncAlways, nil
	case "periodic":
		return embedded.SyncPeriodic, nil
	}
	return 0, fmt.Errorf("tradex bench: --raw-sync %q: want always or periodic: %w", s, errUsage)
}

// printBench prints the report for a reader.
func printBench(w io.Writer, r benchReport) error {
	l := r.Load
	var b strings.Builder
	if r.Raw != nil {
		fmt.Fprintf(&b, "raw JetStream (fsync %s, %d publishers):  %9.0f msgs/s   ack p50 %.2f ms  p99 %.2f ms   %.0f µs CPU per message\n",
			r.RawFsync, r.Raw.Publishers, r.Raw.PerSecond, r.Raw.P50, r.Raw.P99, r.Raw.CPUPerMessage)
	}
	fmt.Fprintf(&b, "orders accepted:  %9d in %.1fs   %9.0f orders/s\n", l.Accepted, l.Seconds, l.AcceptedPerSecond)
	fmt.Fprintf(&b, "orders settled:   %9.0f orders/s (until every consumer caught up)", l.SettledPerSecond)
	if r.SettledOverRaw > 0 {
		fmt.Fprintf(&b, "   %.3f x raw", r.SettledOverRaw)
	}
	fmt.Fprintf(&b, "\nsettle lag after the load: %.2fs\n", l.SettleLagSeconds)
	fmt.Fprintf(&b, "answer latency:   p50 %.2f ms   p99 %.2f ms   p99.9 %.2f ms\n", l.P50, l.P99, l.P999)
	if l.CPUPerOrder > 0 {
		fmt.Fprintf(&b, "platform CPU:     %9.0f µs per settled order\n", l.CPUPerOrder)
	}
	if l.ClientCPUPerOrder > 0 {
		fmt.Fprintf(&b, "load's own CPU:   %9.0f µs per settled order (this process)\n", l.ClientCPUPerOrder)
	}
	fmt.Fprintf(&b, "cancels:          %9d\n", l.Cancelled)
	if len(l.Errors) == 0 {
		b.WriteString("errors:           none\n")
	}
	for _, status := range slices.Sorted(maps.Keys(l.Errors)) {
		fmt.Fprintf(&b, "errors %s:        %9d   first: %s\n", status, l.Errors[status], l.ErrorSamples[status])
	}
	fmt.Fprintf(&b, "funds conserved:  %v   (traders' totals before %v, after %v)\n", l.Conserved, l.Before, l.After)
	_, err := io.WriteString(w, b.String())
	if err == nil && !l.Conserved {
		err = errors.New("tradex bench: funds were not conserved")
	}
	return err
}

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times.
const clockTicks = 100

// processCPU is the user and system CPU time process pid has used, from
// /proc/<pid>/stat (fields 14 and 15, after the command name in
// parentheses).
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("--pid: %w", err)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("--pid: /proc/%d/stat: too few fields", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] { // utime, stime: fields 14 and 15 counting from the pid
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("--pid: /proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
