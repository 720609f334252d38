package bench

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tradex-mesh/tradex/internal/decimal"
)

// client speaks the gateway's REST API.
type client struct {
	base string
	http *http.Client
}

func newClient(cfg Config) *client {
	hc := cfg.Client
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConnsPerHost: cfg.Connections, MaxConnsPerHost: cfg.Connections, IdleConnTimeout: time.Minute,
		}}
	}
	return &client{base: strings.TrimRight(cfg.URL, "/"), http: hc}
}

// do sends a JSON request (body nil: none) with a bearer token ("":
// none) and decodes a 2xx answer into out (nil: discarded). It returns
// the status; err is set for a transport failure or an undecodable answer.
func (c *client) do(ctx context.Context, method, path, token string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer func() { _ = res.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return res.StatusCode, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		err := fmt.Errorf("%s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(data))
		if secs, perr := strconv.Atoi(res.Header.Get("Retry-After")); perr == nil && secs > 0 {
			err = retryAfter{err: err, wait: time.Duration(secs) * time.Second}
		}
		return res.StatusCode, err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return res.StatusCode, nil
}

// retryAfter is a refusal that asks the client to wait (Retry-After).
type retryAfter struct {
	err  error
	wait time.Duration
}

func (r retryAfter) Error() string { return r.err.Error() }
func (r retryAfter) Unwrap() error { return r.err }

// instrument is what the load needs of the traded instrument.
type instrument struct {
	base, quote          string
	tick                 int64 // in units of priceScale
	middle               int64
	priceScale, qtyScale int32
}

func (c *client) instrument(ctx context.Context, symbol, price string) (instrument, error) {
	var out struct {
		Instrument struct {
			BaseAsset     string `json:"baseAsset"`
			QuoteAsset    string `json:"quoteAsset"`
			TickSize      string `json:"tickSize"`
			PriceScale    int32  `json:"priceScale"`
			QuantityScale int32  `json:"quantityScale"`
		} `json:"instrument"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/instruments/"+symbol, "", nil, &out); err != nil {
		return instrument{}, fmt.Errorf("bench: instrument: %w", err)
	}
	in := out.Instrument
	tick, err := decimal.ParseNonNegative(in.TickSize, in.PriceScale)
	if err != nil || tick == 0 {
		return instrument{}, fmt.Errorf("bench: instrument %s: tick size %q: %w", symbol, in.TickSize, err)
	}
	middle, err := decimal.ParseNonNegative(price, in.PriceScale)
	if err != nil || middle <= (spread+restAway)*tick {
		return instrument{}, fmt.Errorf("bench: price %q: must be above %d ticks of %s", price, spread+restAway, in.TickSize)
	}
	return instrument{base: in.BaseAsset, quote: in.QuoteAsset, tick: tick, middle: middle, priceScale: in.PriceScale, qtyScale: in.QuantityScale}, nil
}

// spread is how many ticks around the middle the prices spread; resting
// orders stay restAway ticks or more from the middle.
const (
	spread   = 10
	restAway = 1_000
)

// priceFor is a buy's or a sell's price: crossing buys up to spread
// ticks above the middle and crossing sells down to spread ticks below it
// (so they meet), resting buys and sells restAway ticks or more on their
// side.
func (in instrument) priceFor(buy, cross bool, rng *rand.Rand) string {
	off := rng.Int64N(spread)
	if !cross {
		off = -(restAway + off)
	}
	if !buy {
		off = -off
	}
	return decimal.Format(in.middle+off*in.tick, in.priceScale)
}

// setUp signs the admin in, registers and signs in the traders, and funds
// each with enough of both assets for every order it could place.
func (c *client) setUp(ctx context.Context, cfg Config, in instrument) ([]trader, error) {
	qty, err := decimal.ParseNonNegative(cfg.Quantity, in.qtyScale)
	if err != nil || qty == 0 {
		return nil, fmt.Errorf("bench: quantity %q: %w", cfg.Quantity, err)
	}
	admin, err := c.login(ctx, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("bench: admin: %w", err)
	}
	run, password := token(4), token(12)
	// Enough for five orders a millisecond for the whole run.
	orders := max(1_000, 5*int64(cfg.Duration/time.Millisecond)/int64(cfg.Traders))
	baseAmount := decimal.FormatTrim(qty*orders, in.qtyScale)
	quoteAmount, err := decimal.Mul(in.middle+(spread+1)*in.tick, in.priceScale, qty*orders, in.qtyScale, assetScale)
	if err != nil {
		return nil, fmt.Errorf("bench: funds per trader: %w", err)
	}
	traders := make([]trader, cfg.Traders)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Connections)
	for i := range traders {
		g.Go(func() error {
			email := fmt.Sprintf("bench-%s-%d@bench.tradex.local", run, i)
			var reg struct {
				User struct {
					UserID string `json:"userId"`
				} `json:"user"`
			}
			if _, err := c.do(gctx, http.MethodPost, "/v1/auth/register", "", map[string]string{"email": email, "password": password}, &reg); err != nil {
				return fmt.Errorf("bench: register trader %d: %w", i, err)
			}
			tok, err := c.login(gctx, email, password)
			if err != nil {
				return fmt.Errorf("bench: trader %d: %w", i, err)
			}
			traders[i] = trader{id: reg.User.UserID, token: tok}
			for asset, amount := range map[string]string{in.base: baseAmount, in.quote: decimal.FormatTrim(quoteAmount, assetScale)} {
				dep := map[string]string{"transferId": fmt.Sprintf("bench-%s-%d-%s", run, i, asset), "accountId": reg.User.UserID, "asset": asset, "amount": amount}
				if _, err := c.do(gctx, http.MethodPost, "/v1/admin/deposits", admin, dep, nil); err != nil {
					return fmt.Errorf("bench: fund trader %d: %w", i, err)
				}
			}
			return nil
		})
	}
	return traders, g.Wait()
}

func (c *client) login(ctx context.Context, email, password string) (string, error) {
	var out struct {
		Tokens struct {
			AccessToken string `json:"accessToken"`
		} `json:"tokens"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/auth/login", "", map[string]string{"email": email, "password": password}, &out); err != nil {
		return "", fmt.Errorf("sign in %s: %w", email, err)
	}
	return out.Tokens.AccessToken, nil
}

// token is n random bytes in hex.
func token(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b) // never fails
	return hex.EncodeToString(b)
}

// totals sums every asset's available and held over the traders.
func (c *client) totals(ctx context.Context, traders []trader) (map[string]int64, error) {
	sums := map[string]int64{}
	for _, t := range traders {
		var out struct {
			Balances []struct {
				Asset     string `json:"asset"`
				Available string `json:"available"`
				Held      string `json:"held"`
			} `json:"balances"`
		}
		if _, err := c.do(ctx, http.MethodGet, "/v1/balances", t.token, nil, &out); err != nil {
			return nil, fmt.Errorf("bench: balances: %w", err)
		}
		for _, b := range out.Balances {
			avail, err1 := decimal.Parse(b.Available, assetScale)
			held, err2 := decimal.Parse(b.Held, assetScale)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("bench: balance of %s: %w", b.Asset, err)
			}
			sums[b.Asset] += avail + held
		}
	}
	return sums, nil
}

// waitSettled waits until every durable consumer of the platform has
// caught up: the sum of tradex_consumer_lag on /metrics is 0.
func (c *client) waitSettled(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		lag, err := c.lag(ctx)
		if err == nil && lag == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("bench: settlement not caught up after %s: %w", timeout, err)
			}
			return fmt.Errorf("bench: settlement not caught up after %s: %d messages behind", timeout, lag)
		case <-tick.C:
		}
	}
}

// lag sums tradex_consumer_lag over /metrics.
func (c *client) lag(ctx context.Context) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/metrics", nil)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: %s", res.Status)
	}
	var sum int64
	found := false
	sc := bufio.NewScanner(io.LimitReader(res.Body, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "tradex_consumer_lag{") {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, fmt.Errorf("metrics: %q: %w", line, err)
		}
		sum += int64(v)
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("metrics: %w", err)
	}
	if !found {
		return 0, errors.New("metrics: no tradex_consumer_lag (is this a tradex gateway with the services in its process?)")
	}
	return sum, nil
}
