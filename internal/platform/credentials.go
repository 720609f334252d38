package platform

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/bcrypt"

	"github.com/tradex-mesh/tradex/embedded"
	"github.com/tradex-mesh/tradex/streams"
)

// The platform's own NATS users besides one per service ("tradex-wallet",
// ...): each is also the name of its connections.
const (
	// UserInstruments is the instrument cache: it reads the instrument
	// topics.
	UserInstruments = "tradex-instruments"
	// UserPlatform provisions streams and schemas and answers the
	// readiness probes: the whole JetStream API.
	UserPlatform = "tradex-platform"
	// UserAdmin is the operator's (tradex dlq): everything.
	UserAdmin = "tradex-admin"
	// UserReader may read every topic and publish nothing: for consumers
	// outside the platform.
	UserReader = "tradex-reader"
	// UserKafkaBridge is the Kafka bridge's (tradex bridge, serve
	// --kafka-brokers): it reads every topic and publishes the topics it
	// imports and their dead letters.
	UserKafkaBridge = "tradex-kafka-bridge"
)

// UserNames lists every NATS user of the platform.
func UserNames() []string {
	users := make([]string, 0, len(Names())+5)
	for _, s := range Names() {
		users = append(users, connName(s))
	}
	return append(users, UserInstruments, UserPlatform, UserAdmin, UserReader, UserKafkaBridge)
}

// Credentials are the passwords of the platform's NATS users, by user.
type Credentials map[string]string

// credentialsFile is what a credentials file holds.
type credentialsFile struct {
	Users Credentials `json:"users"`
}

// LoadCredentials reads a credentials file.
func LoadCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator's own file
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	var f credentialsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("nats credentials %s: %w", path, err)
	}
	return f.Users, nil
}

// EnsureCredentials reads the credentials file at path, creating it (or
// adding the users it lacks) with random passwords, readable by its owner
// only.
func EnsureCredentials(path string) (Credentials, error) {
	creds, err := LoadCredentials(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		creds = Credentials{}
	case err != nil:
		return nil, err
	}
	missing := false
	for _, u := range UserNames() {
		if creds[u] == "" {
			creds[u], missing = rand.Text(), true
		}
	}
	if !missing {
		return creds, nil
	}
	b, err := json.MarshalIndent(credentialsFile{Users: creds}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("nats credentials: %w", err)
	}
	return creds, nil
}

// NewCredentials are random credentials for every user, kept nowhere (tests).
func NewCredentials() Credentials {
	creds := Credentials{}
	for _, u := range UserNames() {
		creds[u] = rand.Text()
	}
	return creds
}

// permissions are the permissions of a platform user, from the catalog:
// a service may publish only the topics it produces and use only its own
// streams, consumers and stores; nil for the platform and admin users (no
// restriction).
func permissions(catalog *streams.Catalog, user string) (*streams.Permissions, error) {
	var p streams.Permissions
	switch {
	case user == UserPlatform || user == UserAdmin:
		return nil, nil
	case user == UserReader:
		p = catalog.ReaderPermissions(user)
	case user == UserKafkaBridge:
		p = catalog.BridgePermissions(user, streams.DefaultSchemaBucket)
	case user == UserInstruments:
		p = catalog.ServicePermissions("instruments", user)
	case slices.Contains(Names(), strings.TrimPrefix(user, "tradex-")):
		p = catalog.ServicePermissions(strings.TrimPrefix(user, "tradex-"), user)
	default:
		return nil, fmt.Errorf("no NATS user %q", user)
	}
	return &p, nil
}

// EmbeddedUsers are the embedded server's users: every platform user with
// its password and permissions.
func (c Credentials) EmbeddedUsers(catalog *streams.Catalog) ([]embedded.User, error) {
	users := make([]embedded.User, 0, len(c))
	for _, name := range UserNames() {
		if c[name] == "" {
			return nil, fmt.Errorf("nats credentials: no password for %s", name)
		}
		perms, err := permissions(catalog, name)
		if err != nil {
			return nil, err
		}
		u := embedded.User{Name: name, Password: c[name]}
		if perms != nil {
			u.Publish, u.Subscribe = perms.Publish, perms.Subscribe
		}
		users = append(users, u)
	}
	return users, nil
}

// ServerConfig is the authorization block of a nats-server configuration
// file that admits the platform's users with the permissions the embedded
// server gives them (passwords as bcrypt hashes): what an external cluster
// needs for `tradex serve --nats ... --nats-credentials <file>`.
func (c Credentials) ServerConfig(catalog *streams.Catalog) (string, error) {
	var b strings.Builder
	b.WriteString("# The TradeX platform's NATS users (tradex nats config). Add to every server's configuration.\nauthorization {\n  users = [\n")
	for _, name := range UserNames() {
		if c[name] == "" {
			return "", fmt.Errorf("nats credentials: no password for %s", name)
		}
		// The minimum cost: the passwords are random (128 bits), so a slow
		// hash adds nothing but a slower connect for every service.
		hash, err := bcrypt.GenerateFromPassword([]byte(c[name]), bcrypt.MinCost)
		if err != nil {
			return "", fmt.Errorf("nats credentials: %w", err)
		}
		perms, err := permissions(catalog, name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "    { user: %q, password: %q", name, hash)
		if perms != nil {
			fmt.Fprintf(&b, ",\n      permissions: {\n        publish: { allow: %s }\n        subscribe: { allow: %s }\n      }",
				quoteList(perms.Publish), quoteList(perms.Subscribe))
		}
		b.WriteString(" }\n")
	}
	b.WriteString("  ]\n}\n")
	return b.String(), nil
}

// quoteList writes subjects as a configuration-file list.
func quoteList(subjects []string) string {
	quoted := make([]string, len(subjects))
	for i, s := range subjects {
		quoted[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
