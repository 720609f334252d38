package user

import (
	"errors"

	"github.com/tradex-mesh/tradex/streams"
)

// Config configures the user service.
type Config struct {
	// Bucket is the KV store of the profiles; it must be a KV store of the
	// client's catalog.
	Bucket string
	// ConsumerName is the durable consumer of auth.user.v1.
	ConsumerName string
}

// Default is the configuration of `tradex serve`.
func Default() Config {
	return Config{Bucket: streams.StoreUserProfiles, ConsumerName: "user-profiles"}
}

// Validate reports a setting that cannot work.
func (c Config) Validate() error {
	if c.Bucket == "" || c.ConsumerName == "" {
		return errors.New("user: Bucket and ConsumerName are required")
	}
	return nil
}
