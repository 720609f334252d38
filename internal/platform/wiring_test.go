package platform_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/tradex-mesh/tradex/internal/platform"
)

// noDial is a dialer for platforms that are built but never started.
func noDial(string) (*nats.Conn, error) { return nil, errors.New("not dialled in this test") }

// testConfig is the default configuration with an auth master key.
func testConfig() platform.Config {
	cfg := platform.Default()
	cfg.Auth.MasterKey = make([]byte, 32)
	return cfg
}

func wiring(t *testing.T, services []string, remote string) []string {
	t.Helper()
	cfg := testConfig()
	cfg.Services, cfg.RemoteURL = services, remote
	p, err := platform.New(cfg, platform.Deps{Dial: noDial})
	if err != nil {
		t.Fatalf("New(%v): %v", services, err)
	}
	var out []string
	for _, l := range p.Wiring() {
		out = append(out, l.String())
	}
	return out
}

// The services' wiring does not depend on the order they are listed in: a
// dependency that runs in the process is called in process.
func TestWiringIsTheSameInAnyOrder(t *testing.T) {
	t.Parallel()
	const remote = "http://10.0.0.1:8081"
	want := []string{"wallet -> metadata (http://10.0.0.1:8081)", "order -> metadata (http://10.0.0.1:8081)", "order -> wallet (in process)"}
	for _, services := range [][]string{{"order", "wallet"}, {"wallet", "order"}} {
		if got := wiring(t, services, remote); !slices.Equal(got, want) {
			t.Errorf("--services %s: wiring %v, want %v", strings.Join(services, ","), got, want)
		}
	}
	all := wiring(t, []string{"marketdata", "matching", "order", "wallet", "metadata"}, remote)
	for _, l := range all {
		if !strings.HasSuffix(l, "(in process)") {
			t.Errorf("every service here, yet %s", l)
		}
	}
	if len(all) != 4 { // wallet, order (2) and marketdata need others
		t.Errorf("all services: wiring %v, want 4 links", all)
	}
}

// A service alone reaches every service it needs at the remote URL.
func TestEveryServiceAlone(t *testing.T) {
	t.Parallel()
	needs := map[string][]string{"metadata": nil, "auth": nil, "user": nil, "wallet": {"metadata"}, "order": {"metadata", "wallet"},
		"matching": nil, "marketdata": {"metadata"}}
	for _, name := range platform.Names() {
		got := wiring(t, []string{name}, "http://remote:8081")
		var want []string
		for _, dep := range needs[name] {
			want = append(want, name+" -> "+dep+" (http://remote:8081)")
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s alone: wiring %v, want %v", name, got, want)
		}
	}
}

func TestAMissingDependencyNeedsARemoteURL(t *testing.T) {
	t.Parallel()
	cfg := platform.Default()
	cfg.Services = []string{"order"}
	_, err := platform.New(cfg, platform.Deps{Dial: noDial})
	if err == nil || !strings.Contains(err.Error(), "order needs metadata") {
		t.Fatalf("order alone without a remote URL: %v", err)
	}
}

func TestParseServices(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"all": "metadata,auth,user,wallet,order,matching,marketdata",
		"order, wallet,order": "order,wallet", "matching": "matching"} {
		got, err := platform.ParseServices(in)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("ParseServices(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", " , ", "order,bogus"} {
		if _, err := platform.ParseServices(bad); err == nil {
			t.Errorf("ParseServices(%q) accepted", bad)
		}
	}
}
