package platform

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/services/matching"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/user"
	"github.com/tradex-mesh/tradex/services/wallet"
)

// Service names, in the order the platform starts them.
const (
	Metadata   = "metadata"
	Auth       = "auth"
	User       = "user"
	Wallet     = "wallet"
	Order      = "order"
	Matching   = "matching"
	MarketData = "marketdata"
)

// Names lists every service the platform can run, in start order.
func Names() []string { return []string{Metadata, Auth, User, Wallet, Order, Matching, MarketData} }

// Config is everything the platform builds the services from.
type Config struct {
	// Services are the services to run in this process (Names() for all).
	Services []string
	// RemoteURL is the Connect base URL (another process's internal port)
	// of the services this process depends on but does not run.
	RemoteURL string
	// Replicas is the replica count of the streams and stores the platform
	// creates; 0 picks 3 on a cluster of three or more servers, else 1.
	Replicas int
	// MaxLag is how many unacknowledged messages a service's durable
	// consumer may have before the service reports itself Behind (not
	// ready).
	MaxLag uint64
	// The services' own configurations.
	Metadata   metadata.Config
	Auth       auth.Config
	User       user.Config
	Wallet     wallet.Config
	Order      order.Config
	Matching   matching.Config
	MarketData marketdata.Config
}

// Default runs every service with its defaults; Auth.MasterKey is left
// for the caller to set (it must be kept, not generated per start).
func Default() Config {
	return Config{
		Services:   Names(),
		MaxLag:     10_000,
		Metadata:   metadata.Default(),
		Auth:       auth.Default(),
		User:       user.Default(),
		Wallet:     wallet.Default(),
		Order:      order.Default(),
		Matching:   matching.Default(),
		MarketData: marketdata.Default(),
	}
}

// ParseServices reads a --services value: "all" or a comma-separated list
// of names, each at most once.
func ParseServices(list string) ([]string, error) {
	if strings.TrimSpace(list) == "all" {
		return Names(), nil
	}
	var out []string
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
		case !slices.Contains(Names(), name):
			return nil, fmt.Errorf("unknown service %q (available: all, %s)", name, strings.Join(Names(), ", "))
		case !slices.Contains(out, name):
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no service to run")
	}
	return out, nil
}

// Validate checks the configuration, each service's included.
func (c Config) Validate() error {
	if len(c.Services) == 0 {
		return errors.New("platform: no service to run")
	}
	for _, name := range c.Services {
		if !slices.Contains(Names(), name) {
			return fmt.Errorf("platform: unknown service %q", name)
		}
	}
	if c.Replicas < 0 || c.Replicas > 5 {
		return fmt.Errorf("platform: replicas %d: want 0 (auto) to 5", c.Replicas)
	}
	if c.MaxLag == 0 {
		return errors.New("platform: MaxLag must be at least 1")
	}
	var authErr error
	if c.runs(Auth) { // its master key is needed only where it runs
		authErr = c.Auth.Validate()
	}
	return errors.Join(c.Metadata.Validate(), authErr, c.User.Validate(), c.Wallet.Validate(), c.Order.Validate(),
		c.Matching.Validate(), c.MarketData.Validate())
}

// runs reports whether the service runs in this process.
func (c Config) runs(name string) bool { return slices.Contains(c.Services, name) }
