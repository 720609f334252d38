package gateway

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// proxies are the trusted reverse proxies in front of the gateway.
type proxies []netip.Prefix

// parseProxies reads Config.TrustedProxies: IP addresses or CIDRs.
func parseProxies(list []string) (proxies, error) {
	out := make(proxies, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("gateway: trusted proxy %q is neither an IP address nor a CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (ps proxies) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address a request is attributed to (rate limits, logs).
// From a trusted proxy it is the right-most X-Forwarded-For address that
// is not itself a trusted proxy: proxies append the address they received
// from, so the addresses left of it are the client's to write and prove
// nothing. From anyone else it is the peer address.
func (g *Gateway) clientIP(c *fiber.Ctx) string {
	remote, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	remote = remote.Unmap()
	if len(g.proxies) == 0 || !g.proxies.trusted(remote) {
		return remote.String()
	}
	hops := strings.Split(c.Get(fiber.HeaderXForwardedFor), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // a malformed hop: trust nothing left of it
		}
		if !g.proxies.trusted(a) {
			return a.Unmap().String()
		}
	}
	return remote.String()
}
