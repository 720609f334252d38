package book

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The script language of the table and golden tests, one command per line:
//
//	buy limit gtc 10@100 acct=a id=o1 [post] [stp=taker|maker|both]
//	sell market ioc 5 acct=b id=o2         (market: quantity, or quantity@protection)
//	cancel o1 acct=a [reason=user|admin]
//	depth                                   (print the book)
//	restore                                 (snapshot, encode, decode, restore, go on)
//
// The time in force may be "-" for zero (the default). Blank lines and lines starting
// with # are skipped. acct defaults to "a".

// stepKind is what a script line does.
type stepKind int

const (
	stepCommand stepKind = iota
	stepDepth
	stepRestore
)

// step is one parsed script line.
type step struct {
	kind stepKind
	cmd  Command
	line string
}

var errScript = errors.New("bad script line")

// parseScript parses a whole script.
func parseScript(src string) ([]step, error) {
	var steps []step
	for n, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// parseLine parses one script line.
func parseLine(line string) (step, error) {
	f := strings.Fields(line)
	switch f[0] {
	case "depth":
		return step{kind: stepDepth, line: line}, nil
	case "restore":
		return step{kind: stepRestore, line: line}, nil
	case "cancel":
		return parseCancel(line, f)
	case "buy", "sell":
		return parseSubmit(line, f)
	}
	return step{}, fmt.Errorf("%w: %q", errScript, line)
}

func parseCancel(line string, f []string) (step, error) {
	if len(f) < 2 {
		return step{}, fmt.Errorf("%w: %q: cancel needs an id", errScript, line)
	}
	c := Command{Kind: Cancel, OrderID: f[1], Account: "a"}
	for _, opt := range f[2:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "acct":
			c.Account = v
		case "reason":
			r, ok := map[string]CancelReason{"user": CancelUserRequested, "admin": CancelAdmin, "stp": CancelSelfTrade}[v]
			if !ok {
				return step{}, fmt.Errorf("%w: %q: reason %q", errScript, line, v)
			}
			c.CancelReason = r
		default:
			return step{}, fmt.Errorf("%w: %q: option %q", errScript, line, opt)
		}
	}
	return step{kind: stepCommand, cmd: c, line: line}, nil
}

func parseSubmit(line string, f []string) (step, error) {
	if len(f) < 4 {
		return step{}, fmt.Errorf("%w: %q: want side type tif qty[@price]", errScript, line)
	}
	c := Command{Kind: Submit, Side: Buy, Account: "a"}
	if f[0] == "sell" {
		c.Side = Sell
	}
	switch f[1] {
	case "limit":
		c.Type = Limit
	case "market":
		c.Type = Market
	default:
		return step{}, fmt.Errorf("%w: %q: type %q", errScript, line, f[1])
	}
	tif, ok := map[string]TimeInForce{"gtc": GTC, "ioc": IOC, "fok": FOK, "-": 0}[f[2]]
	if !ok {
		return step{}, fmt.Errorf("%w: %q: tif %q", errScript, line, f[2])
	}
	c.TimeInForce = tif
	qty, price, hasPrice := strings.Cut(f[3], "@")
	var err error
	if c.Quantity, err = strconv.ParseInt(qty, 10, 64); err != nil {
		return step{}, fmt.Errorf("%w: %q: %w", errScript, line, err)
	}
	if hasPrice {
		if c.Price, err = strconv.ParseInt(price, 10, 64); err != nil {
			return step{}, fmt.Errorf("%w: %q: %w", errScript, line, err)
		}
	}
	for _, opt := range f[4:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "acct":
			c.Account = v
		case "id":
			c.OrderID = v
		case "post":
			c.PostOnly = true
		case "stp":
			p, ok := map[string]SelfTradePrevention{"taker": STPCancelTaker, "maker": STPCancelMaker, "both": STPCancelBoth}[v]
			if !ok {
				return step{}, fmt.Errorf("%w: %q: stp %q", errScript, line, v)
			}
			c.SelfTradePrevention = p
		default:
			return step{}, fmt.Errorf("%w: %q: option %q", errScript, line, opt)
		}
	}
	return step{kind: stepCommand, cmd: c, line: line}, nil
}

// formatEvent renders e on one line, with every field its kind sets.
func formatEvent(e *Event) string {
	var sb strings.Builder
	sb.WriteString(e.Kind.String())
	switch e.Kind {
	case EventTrade:
		fmt.Fprintf(&sb, " %d@%d taker=%s/%s %s %s %s rem=%d maker=%s/%s rem=%d",
			e.Quantity, e.Price, e.OrderID, e.Account, e.Side, e.Type, e.TimeInForce, e.Remaining,
			e.MakerOrderID, e.MakerAccount, e.MakerRemaining)
	case EventCancelRejected:
		fmt.Fprintf(&sb, " id=%s acct=%s: %s (%s)", e.OrderID, e.Account, e.RejectReason, e.Message)
	default:
		fmt.Fprintf(&sb, " id=%s acct=%s %s %s %s %d", e.OrderID, e.Account, e.Side, e.Type, e.TimeInForce, e.Quantity)
		if e.Price != 0 {
			fmt.Fprintf(&sb, "@%d", e.Price)
		}
		if e.PostOnly {
			sb.WriteString(" post")
		}
	}
	switch e.Kind {
	case EventRejected:
		fmt.Fprintf(&sb, ": %s (%s)", e.RejectReason, e.Message)
	case EventCancelled:
		fmt.Fprintf(&sb, " reason=%s", e.CancelReason)
	case EventExpired:
		sb.WriteString(" reason=fok")
	}
	for i, ch := range e.BookChanges() {
		sep := ", "
		if i == 0 {
			sep = " | "
		}
		side := "bid"
		if ch.Side == Sell {
			side = "ask"
		}
		fmt.Fprintf(&sb, "%s%s %d=%d", sep, side, ch.Price, ch.Quantity)
	}
	return sb.String()
}

// formatEvents renders events one per line, each prefixed by indent.
func formatEvents(events []Event, indent string) string {
	var sb strings.Builder
	for i := range events {
		sb.WriteString(indent)
		sb.WriteString(formatEvent(&events[i]))
		sb.WriteByte('\n')
	}
	return sb.String()
}

// formatDepth renders the whole book as a ladder: asks from the highest down, then bids
// from the highest down.
func formatDepth(b *Book, indent string) string {
	var sb strings.Builder
	asks := b.Depth(Sell, b.Levels(Sell), nil)
	for i := len(asks) - 1; i >= 0; i-- {
		fmt.Fprintf(&sb, "%sask %d x %d (%d)\n", indent, asks[i].Price, asks[i].Quantity, asks[i].Orders)
	}
	for _, l := range b.Depth(Buy, b.Levels(Buy), nil) {
		fmt.Fprintf(&sb, "%sbid %d x %d (%d)\n", indent, l.Price, l.Quantity, l.Orders)
	}
	if sb.Len() == 0 {
		sb.WriteString(indent + "empty\n")
	}
	return sb.String()
}

// runScript runs steps on b, checking the book after each, and renders what happened.
// It returns the book it ended with (restore replaces it).
func runScript(b *Book, steps []step) (*Book, string, error) {
	var sb strings.Builder
	var events []Event
	for _, s := range steps {
		sb.WriteString("> " + s.line + "\n")
		switch s.kind {
		case stepCommand:
			events = b.Apply(s.cmd, events[:0])
			sb.WriteString(formatEvents(events, "  "))
		case stepDepth:
			sb.WriteString(formatDepth(b, "  "))
		case stepRestore:
			r, err := roundTrip(b)
			if err != nil {
				return b, sb.String(), err
			}
			b = r
		}
		if err := b.Check(); err != nil {
			return b, sb.String(), fmt.Errorf("after %q: %w", s.line, err)
		}
	}
	return b, sb.String(), nil
}

// roundTrip snapshots b, encodes and decodes the snapshot, and restores a new book.
func roundTrip(b *Book) (*Book, error) {
	data, err := b.Snapshot().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	var s Snapshot
	if err := s.UnmarshalBinary(data); err != nil {
		return nil, fmt.Errorf("unmarshal: %w", err)
	}
	return Restore(s)
}
