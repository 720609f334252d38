package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/streams"
)

const dlqUsage = `Usage: tradex dlq <command> [flags]

Dead letters are messages a consumer gave up on; they are kept in the
stream of dlq.<topic> until they are redriven or purged.

Commands:
  stats     count the dead letters of every topic
  list      list the dead letters of a topic, oldest first
  show      print one dead letter: headers and payload as JSON (--seq)
  redrive   republish dead letters to their topic, then delete them
  purge     delete dead letters for good (needs --yes)

Run "tradex dlq <command> --help" for its flags.
`

// defaultDLQNATS is the client listener of a local `tradex serve`.
const defaultDLQNATS = "nats://127.0.0.1:4222"

// dlqConfig is everything `tradex dlq <command>` is told, parsed once.
type dlqConfig struct {
	// Command is stats, list, show, redrive or purge.
	Command string
	// NATSURL is where to connect (comma-separated URLs).
	NATSURL string
	// NATSCredentials is the platform's credentials file; the tool logs in
	// as its admin user. Empty: no authentication.
	NATSCredentials string
	// NATSCA, NATSClientCert and NATSClientKey connect over TLS: the CA
	// trusted and the client certificate presented.
	NATSCA, NATSClientCert, NATSClientKey string
	// Topic is the catalog topic whose dead letters to work on.
	Topic string
	// Filter selects dead letters (list, redrive, purge); its Sequence is
	// the dead letter to print for show.
	Filter streams.DLQFilter
	// JSON prints JSON instead of text (stats, list, show).
	JSON bool
	// Rate, DryRun and Keep shape a redrive.
	Rate   float64
	DryRun bool
	Keep   bool
	// Yes confirms a purge.
	Yes bool
}

// dlqCommands are the subcommands of `tradex dlq`.
var dlqCommands = []string{"stats", "list", "show", "redrive", "purge"}

// runDLQ runs `tradex dlq <command>`.
func runDLQ(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, dlqUsage)
		return errUsage
	}
	if c := args[0]; c == "help" || c == "-h" || c == "--help" {
		_, err := io.WriteString(stdout, dlqUsage)
		return err
	}
	if !slices.Contains(dlqCommands, args[0]) {
		fmt.Fprintf(stderr, "tradex dlq: unknown command %q\n\n%s", args[0], dlqUsage)
		return errUsage
	}
	cfg, err := parseDLQFlags(args[0], args[1:], getenv, stderr, time.Now())
	if err != nil {
		return err
	}
	creds, err := dlqCredentials(cfg.NATSCredentials)
	if err != nil {
		return err
	}
	var dialOpts []platform.DialOption
	if t, err := natsClientTLS(cfg.NATSCA, cfg.NATSClientCert, cfg.NATSClientKey); err != nil {
		return err
	} else if t != nil {
		dialOpts = append(dialOpts, platform.WithTLS(t))
	}
	nc, err := platform.Dial(cfg.NATSURL, creds, platform.UserAdmin, dialOpts...)
	if err != nil {
		return fmt.Errorf("--nats: connect to %s: %w", cfg.NATSURL, err)
	}
	defer nc.Close()
	catalog := streams.DefaultCatalog()
	mesh, err := streams.Connect(nc, catalog)
	if err != nil {
		return err
	}
	d := mesh.DLQ()
	switch cfg.Command {
	case "stats":
		return dlqStats(ctx, d, cfg, stdout)
	case "list":
		return dlqList(ctx, d, catalog, cfg, stdout)
	case "show":
		return dlqShow(ctx, d, catalog, cfg, stdout)
	case "redrive":
		return dlqRedrive(ctx, d, cfg, stdout)
	default:
		return dlqPurge(ctx, d, cfg, stdout)
	}
}

// defaultDLQCredentials is where tradex serve keeps the credentials with
// its default --data-dir.
var defaultDLQCredentials = filepath.Join("data", natsCredentialsFile)

// dlqCredentials reads the credentials file; without one (none given, or
// the default one absent: an external cluster without authentication) the
// tool connects without credentials.
func dlqCredentials(path string) (platform.Credentials, error) {
	if path == "" {
		return nil, nil
	}
	creds, err := platform.LoadCredentials(path)
	if errors.Is(err, fs.ErrNotExist) && path == defaultDLQCredentials {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--nats-credentials: %w", err)
	}
	return creds, nil
}

// parseDLQFlags reads the flags of command, and TRADEX_NATS, and validates
// them. now anchors relative --since and --until.
func parseDLQFlags(command string, args []string, getenv func(string) string, stderr io.Writer, now time.Time) (dlqConfig, error) {
	cfg := dlqConfig{Command: command, NATSURL: defaultDLQNATS, NATSCredentials: defaultDLQCredentials}
	if v := getenv(envPrefix + "NATS"); v != "" {
		cfg.NATSURL = v
	}
	if v := getenv(envPrefix + "NATS_CREDENTIALS"); v != "" {
		cfg.NATSCredentials = v
	}
	fs := flag.NewFlagSet("tradex dlq "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.NATSURL, "nats", cfg.NATSURL, "NATS URLs (comma-separated): a running tradex serve's listener or the cluster it uses; env "+envPrefix+"NATS")
	fs.StringVar(&cfg.NATSCredentials, "nats-credentials", cfg.NATSCredentials, "the platform's NATS credentials file (tradex serve writes <data-dir>/"+natsCredentialsFile+"); empty: no authentication; env "+envPrefix+"NATS_CREDENTIALS")
	fs.StringVar(&cfg.NATSCA, "nats-ca", getenv(envPrefix+"NATS_CA"), "CA file (PEM) trusted for the server's TLS certificate (tradex serve --nats-tls-cert, a TLS cluster); env "+envPrefix+"NATS_CA")
	fs.StringVar(&cfg.NATSClientCert, "nats-client-cert", getenv(envPrefix+"NATS_CLIENT_CERT"), "client certificate file (PEM) for a server that verifies them; needs --nats-client-key")
	fs.StringVar(&cfg.NATSClientKey, "nats-client-key", getenv(envPrefix+"NATS_CLIENT_KEY"), "private key file (PEM) of --nats-client-cert")
	filters := command == "list" || command == "redrive" || command == "purge"
	if command != "stats" {
		fs.StringVar(&cfg.Topic, "topic", "", "topic whose dead letters to use, e.g. "+streams.TopicEngineEvent+" (required)")
		seqHelp := "only the dead letter with this DLQ sequence (the SEQ column of list)"
		if command == "show" {
			seqHelp = "DLQ sequence of the dead letter to print (required)"
		}
		fs.Uint64Var(&cfg.Filter.Sequence, "seq", 0, seqHelp)
	}
	var since, until string
	if filters {
		fs.StringVar(&cfg.Filter.Key, "key", "", "only dead letters of this partition key (instrument, account, ...)")
		fs.StringVar(&cfg.Filter.Handler, "handler", "", "only dead letters written by this consumer, e.g. wallet-settlement")
		fs.StringVar(&cfg.Filter.ReasonContains, "reason", "", "only dead letters whose reason contains this text (any case)")
		fs.StringVar(&since, "since", "", "only dead letters written since then: a duration back from now (1h, 30m) or an RFC3339 time")
		fs.StringVar(&until, "until", "", "only dead letters written before then: a duration back from now or an RFC3339 time")
		fs.IntVar(&cfg.Filter.Limit, "limit", 0, "at most this many dead letters, oldest first (0: no limit)")
	}
	if command == "stats" || command == "list" || command == "show" {
		fs.BoolVar(&cfg.JSON, "json", false, "print JSON instead of text")
	}
	if command == "redrive" {
		fs.Float64Var(&cfg.Rate, "rate", 0, "republish at most this many dead letters a second (0: no limit)")
		fs.BoolVar(&cfg.DryRun, "dry-run", false, "list what would be redriven and change nothing")
		fs.BoolVar(&cfg.Keep, "keep", false, "keep the dead letters in the DLQ after republishing them")
	}
	if command == "purge" {
		fs.BoolVar(&cfg.Yes, "yes", false, "confirm: purged dead letters are gone for good")
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tradex dlq %s [flags]\n\nFlags:\n", command)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, err
		}
		return cfg, errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tradex dlq %s: unexpected argument %q\n", command, fs.Arg(0))
		return cfg, errUsage
	}
	var err error
	if cfg.Filter.Since, err = parseWhen(since, now); err != nil {
		return cfg, fmt.Errorf("--since: %w", err)
	}
	if cfg.Filter.Until, err = parseWhen(until, now); err != nil {
		return cfg, fmt.Errorf("--until: %w", err)
	}
	return cfg, cfg.validate()
}

// validate reports the first setting that cannot work, naming the flag.
func (c dlqConfig) validate() error {
	if c.NATSURL == "" {
		return errors.New("--nats: must not be empty")
	}
	if c.Command != "stats" {
		if c.Topic == "" {
			return errors.New("--topic: required")
		}
		if _, err := streams.DefaultCatalog().Topic(strings.TrimPrefix(c.Topic, "dlq.")); err != nil {
			var known []string
			for _, t := range streams.DefaultCatalog().Topics() {
				known = append(known, t.Name)
			}
			return fmt.Errorf("--topic: %w; known topics: %s", err, strings.Join(known, ", "))
		}
	}
	if c.Filter.Key != "" {
		if err := streams.ValidateKey(c.Filter.Key); err != nil {
			return fmt.Errorf("--key: %w", err)
		}
	}
	switch {
	case c.Command == "show" && c.Filter.Sequence == 0:
		return errors.New("--seq: required")
	case c.Filter.Limit < 0:
		return errors.New("--limit: must not be negative")
	case !c.Filter.Since.IsZero() && !c.Filter.Until.IsZero() && !c.Filter.Until.After(c.Filter.Since):
		return errors.New("--until: must be later than --since")
	case c.Rate < 0:
		return errors.New("--rate: must not be negative")
	case c.Command == "purge" && !c.Yes:
		return errors.New("--yes: purge deletes dead letters for good; run it again with --yes to confirm (list shows what the same filters select)")
	}
	return nil
}

// parseWhen reads "" (no bound), a duration back from now ("1h") or an
// RFC3339 time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must not be negative", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a duration (1h, 30m) nor an RFC3339 time (2026-01-02T15:04:05Z)", s)
	}
	return t, nil
}

func dlqStats(ctx context.Context, d *streams.DLQ, cfg dlqConfig, w io.Writer) error {
	sums, err := d.Summaries(ctx)
	if err != nil {
		return err
	}
	if cfg.JSON {
		type summaryJSON struct {
			Topic  string     `json:"topic"`
			Count  uint64     `json:"count"`
			Oldest *time.Time `json:"oldest,omitempty"`
			Newest *time.Time `json:"newest,omitempty"`
		}
		out := make([]summaryJSON, 0, len(sums))
		for _, s := range sums {
			j := summaryJSON{Topic: s.Topic, Count: s.Count}
			if s.Count > 0 {
				j.Oldest, j.Newest = &s.Oldest, &s.Newest
			}
			out = append(out, j)
		}
		return writeJSON(w, out)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TOPIC\tDEAD LETTERS\tOLDEST\tNEWEST")
	for _, s := range sums {
		oldest, newest := "-", "-"
		if s.Count > 0 {
			oldest, newest = formatTime(s.Oldest), formatTime(s.Newest)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Topic, s.Count, oldest, newest)
	}
	return tw.Flush()
}

func dlqList(ctx context.Context, d *streams.DLQ, catalog *streams.Catalog, cfg dlqConfig, w io.Writer) error {
	dls, err := d.List(ctx, cfg.Topic, cfg.Filter)
	if err != nil {
		return err
	}
	if cfg.JSON {
		out := make([]dlqMessageJSON, 0, len(dls))
		for _, dl := range dls {
			out = append(out, messageJSON(catalog, dl))
		}
		return writeJSON(w, out)
	}
	return writeTable(w, dls, streams.DLQTopic(strings.TrimPrefix(cfg.Topic, "dlq.")))
}

// writeTable prints dead letters one a line, then how many there are.
func writeTable(w io.Writer, dls []streams.DLQMessage, dlqTopic string) error {
	if len(dls) == 0 {
		_, err := fmt.Fprintf(w, "no dead letters in %s match\n", dlqTopic)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tDEAD-LETTERED\tKEY\tHANDLER\tTRIES\tREASON")
	for _, dl := range dls {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\n", dl.Sequence, formatTime(dl.Time), orDash(dl.Key), orDash(dl.Handler), dl.Deliveries, oneLine(dl.Reason, 80))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d dead letter%s in %s\n", len(dls), plural(len(dls)), dlqTopic)
	return err
}

func dlqShow(ctx context.Context, d *streams.DLQ, catalog *streams.Catalog, cfg dlqConfig, w io.Writer) error {
	dl, err := d.Get(ctx, cfg.Topic, cfg.Filter.Sequence)
	if err != nil {
		return err
	}
	j := messageJSON(catalog, dl)
	if cfg.JSON {
		return writeJSON(w, j)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	fmt.Fprintf(tw, "dead letter\t%d of %s\n", dl.Sequence, streams.DLQTopic(dl.Topic))
	fmt.Fprintf(tw, "subject\t%s (sequence %d of %s)\n", dl.Subject, dl.OriginalSequence, streams.StreamName(dl.Topic))
	fmt.Fprintf(tw, "original id\t%s\n", orDash(dl.OriginalMsgID))
	fmt.Fprintf(tw, "handler\t%s, %d deliveries\n", orDash(dl.Handler), dl.Deliveries)
	fmt.Fprintf(tw, "dead-lettered\t%s\n", dl.Time.UTC().Format(time.RFC3339Nano))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "reason:\n  %s\n\nheaders:\n", strings.ReplaceAll(dl.Reason, "\n", "\n  "))
	keys := make([]string, 0, len(dl.Header))
	for k := range dl.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range dl.Header[k] {
			fmt.Fprintf(w, "  %s: %s\n", k, oneLine(v, 200))
		}
	}
	if j.DecodeError != "" {
		_, err := fmt.Fprintf(w, "\npayload (%d bytes, %s):\n%s", len(dl.Data), j.DecodeError, hex.Dump(dl.Data))
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, j.Payload, "", "  "); err != nil {
		return fmt.Errorf("format payload: %w", err)
	}
	_, err = fmt.Fprintf(w, "\npayload (%s):\n%s\n", j.PayloadType, pretty.Bytes())
	return err
}

func dlqRedrive(ctx context.Context, d *streams.DLQ, cfg dlqConfig, w io.Writer) error {
	dlqTopic := streams.DLQTopic(strings.TrimPrefix(cfg.Topic, "dlq."))
	if cfg.DryRun {
		dls, err := d.List(ctx, cfg.Topic, cfg.Filter)
		if err != nil {
			return err
		}
		if err := writeTable(w, dls, dlqTopic); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "dry run: %d dead letter%s would be redriven; nothing changed\n", len(dls), plural(len(dls)))
		return err
	}
	opts := []streams.RedriveOption{streams.WithRedriveRate(cfg.Rate)}
	if cfg.Keep {
		opts = append(opts, streams.WithRedriveKeep())
	}
	n, err := d.Redrive(ctx, cfg.Topic, cfg.Filter, opts...)
	done := "deleted from"
	if cfg.Keep {
		done = "kept in"
	}
	if err != nil {
		if n > 0 {
			fmt.Fprintf(w, "%d dead letter%s redriven and %s %s before the error; running redrive again is safe\n", n, plural(n), done, dlqTopic)
		}
		return err
	}
	_, err = fmt.Fprintf(w, "%d dead letter%s redriven to %s and %s %s\n", n, plural(n), strings.TrimPrefix(dlqTopic, "dlq."), done, dlqTopic)
	return err
}

func dlqPurge(ctx context.Context, d *streams.DLQ, cfg dlqConfig, w io.Writer) error {
	n, err := d.Purge(ctx, cfg.Topic, cfg.Filter)
	if err != nil {
		if n > 0 {
			fmt.Fprintf(w, "%d dead letter%s purged before the error\n", n, plural(n))
		}
		return err
	}
	_, err = fmt.Fprintf(w, "%d dead letter%s purged from %s\n", n, plural(n), streams.DLQTopic(strings.TrimPrefix(cfg.Topic, "dlq.")))
	return err
}

// dlqMessageJSON is a dead letter as list --json and show --json print it.
type dlqMessageJSON struct {
	Seq           uint64              `json:"seq"`
	Topic         string              `json:"topic"`
	Key           string              `json:"key"`
	Subject       string              `json:"subject"`
	OriginalSeq   uint64              `json:"originalSeq"`
	OriginalMsgID string              `json:"originalMsgId,omitempty"`
	Handler       string              `json:"handler"`
	Deliveries    int                 `json:"deliveries"`
	Reason        string              `json:"reason"`
	Time          time.Time           `json:"time"`
	Headers       map[string][]string `json:"headers"`
	// PayloadType is the proto message name the topic carries.
	PayloadType string `json:"payloadType"`
	// Payload is the payload as protobuf JSON, when it decodes.
	Payload json.RawMessage `json:"payload,omitempty"`
	// Data (base64) and DecodeError replace Payload when it does not.
	Data        []byte `json:"data,omitempty"`
	DecodeError string `json:"decodeError,omitempty"`
}

// messageJSON converts a dead letter, decoding its payload with the
// catalog's type for its topic.
func messageJSON(catalog *streams.Catalog, dl streams.DLQMessage) dlqMessageJSON {
	j := dlqMessageJSON{
		Seq: dl.Sequence, Topic: dl.Topic, Key: dl.Key, Subject: dl.Subject,
		OriginalSeq: dl.OriginalSequence, OriginalMsgID: dl.OriginalMsgID,
		Handler: dl.Handler, Deliveries: dl.Deliveries, Reason: dl.Reason, Time: dl.Time.UTC(), Headers: dl.Header,
	}
	payload, err := decodePayload(catalog, dl)
	if err != nil {
		j.Data, j.DecodeError = dl.Data, err.Error()
	} else {
		j.Payload = payload
	}
	if t, err := catalog.Topic(dl.Topic); err == nil {
		j.PayloadType = string(t.MessageName())
	}
	return j
}

// decodePayload renders a dead letter's payload as protobuf JSON.
func decodePayload(catalog *streams.Catalog, dl streams.DLQMessage) (json.RawMessage, error) {
	t, err := catalog.Topic(dl.Topic)
	if err != nil {
		return nil, err
	}
	msg := t.Payload.ProtoReflect().New().Interface()
	if dl.Header.Get(streams.HeaderContentType) == streams.ContentTypeJSON {
		err = protojson.Unmarshal(dl.Data, msg)
	} else {
		err = proto.Unmarshal(dl.Data, msg)
	}
	if err != nil {
		return nil, fmt.Errorf("not a valid %s: %w", t.MessageName(), err)
	}
	out, err := protojson.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", t.MessageName(), err)
	}
	return out, nil
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON: %w", err)
	}
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// oneLine keeps the first line of s, cut to at most n runes.
func oneLine(s string, n int) string {
	first, _, more := strings.Cut(s, "\n")
	r := []rune(strings.TrimSpace(first))
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	if more {
		return string(r) + " …"
	}
	return string(r)
}
