package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/tradex-mesh/tradex/services/auth/password"
	"github.com/tradex-mesh/tradex/streams"
)

// Config configures the auth service.
type Config struct {
	// Issuer and Audience are the access tokens' "iss" and "aud".
	Issuer, Audience string
	// AccessTTL is how long an access token holds; RefreshTTL how long a
	// login lasts without being refreshed.
	AccessTTL, RefreshTTL time.Duration
	// Leeway is the clock skew allowed when checking token times.
	Leeway time.Duration
	// Bucket is the KV store of the service's state; it must be a KV store
	// of the client's catalog.
	Bucket string
	// MasterKey (32 bytes) encrypts API-key secrets and token signing keys
	// at rest. Required; losing it invalidates every HMAC key and signing
	// key.
	MasterKey []byte
	// Password are the argon2id costs of new password hashes.
	Password password.Params
	// LoginFailures is how many failed logins one address may make for one
	// email, and 4x that for all emails, within LoginWindow before its
	// further attempts are refused with ResourceExhausted until the window
	// passes. Other addresses are not affected, so guessing cannot lock the
	// owner out.
	LoginFailures int
	// LoginWindow is the period LoginFailures counts over.
	LoginWindow time.Duration
}

// Default is the configuration of `tradex serve` without its master key:
// 15-minute access tokens, 30-day logins, 30 s leeway.
func Default() Config {
	return Config{
		Issuer: "tradex", Audience: "tradex-api",
		AccessTTL: 15 * time.Minute, RefreshTTL: 30 * 24 * time.Hour, Leeway: 30 * time.Second,
		Bucket:        streams.StoreAuth,
		Password:      password.Default(),
		LoginFailures: 5, LoginWindow: 15 * time.Minute,
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.Issuer == "" || c.Audience == "" {
		errs = append(errs, errors.New("auth: Issuer and Audience are required"))
	}
	if c.AccessTTL <= 0 || c.RefreshTTL < c.AccessTTL || c.Leeway < 0 {
		errs = append(errs, errors.New("auth: AccessTTL > 0, RefreshTTL >= AccessTTL and Leeway >= 0 are required"))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("auth: Bucket is required"))
	}
	if len(c.MasterKey) != 32 {
		errs = append(errs, fmt.Errorf("auth: MasterKey must be 32 bytes, not %d", len(c.MasterKey)))
	}
	if c.Password.Memory == 0 || c.Password.Time == 0 || c.Password.Threads == 0 {
		errs = append(errs, errors.New("auth: Password parameters are required"))
	}
	if c.LoginFailures < 1 || c.LoginWindow <= 0 {
		errs = append(errs, errors.New("auth: LoginFailures >= 1 and LoginWindow > 0 are required"))
	}
	return errors.Join(errs...)
}
