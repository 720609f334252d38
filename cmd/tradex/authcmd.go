package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/streams"
)

const authUsage = `Usage:
  tradex auth rotate-key [flags]                 add a token signing key; the old one stays until its tokens expire
  tradex admin create-user --email E [flags]     create a user (an admin unless --role says otherwise) with a one-time password

They reach a running platform through NATS as the auth service's user
(--nats, --nats-credentials) and need its master key (--auth-master-key,
default data/auth-master-key).
`

// authTool is the auth service as the command-line tools run it: on the
// platform's NATS, as the auth service's user, with its master key.
type authTool struct {
	svc  *auth.Service
	stop func()
}

// openAuthTool parses the common flags (and the command's, through
// extra), connects and starts an auth service until stop.
func openAuthTool(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (*authTool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	natsURL := fs.String("nats", firstNonEmpty(getenv(envPrefix+"NATS"), defaultDLQNATS), "NATS URLs of the running platform; env "+envPrefix+"NATS")
	credsPath := fs.String("nats-credentials", firstNonEmpty(getenv(envPrefix+"NATS_CREDENTIALS"), defaultDLQCredentials), "the platform's NATS credentials file")
	keyPath := fs.String("auth-master-key", firstNonEmpty(getenv(envPrefix+"AUTH_MASTER_KEY"), filepath.Join("data", authMasterKeyFile)), "the auth service's master key file")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	key, err := masterKey(*keyPath, "")
	if err != nil {
		return nil, err
	}
	creds, err := dlqCredentials(*credsPath)
	if err != nil {
		return nil, err
	}
	nc, err := platform.Dial(*natsURL, creds, "tradex-"+platform.Auth)
	if err != nil {
		return nil, fmt.Errorf("--nats: connect to %s: %w", *natsURL, err)
	}
	mesh, err := streams.Connect(nc, streams.DefaultCatalog())
	if err != nil {
		nc.Close()
		return nil, err
	}
	cfg := auth.Default()
	cfg.MasterKey = key
	svc, err := auth.New(cfg, auth.Deps{Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/auth-cli"))})
	if err != nil {
		nc.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil { // Run returns nil once ctx ends
			fmt.Fprintf(stderr, "auth: %v\n", err)
		}
		nc.Close()
	}
	select {
	case <-svc.Ready():
		return &authTool{svc: svc, stop: stop}, nil
	case err := <-done:
		nc.Close()
		cancel()
		return nil, fmt.Errorf("auth: %w", err)
	case <-time.After(30 * time.Second):
		stop()
		return nil, errors.New("auth: not ready within 30 s")
	}
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// runAuth is `tradex auth ...`.
func runAuth(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "rotate-key" {
		fmt.Fprint(stderr, authUsage)
		return errUsage
	}
	t, err := openAuthTool(ctx, "tradex auth rotate-key", args[1:], getenv, stderr, nil)
	if err != nil {
		return err
	}
	defer t.stop()
	id, err := t.svc.RotateKey(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "new signing key %s: tokens are signed with it within a minute; the old key verifies until its tokens expire\n", id)
	return err
}

// runAdmin is `tradex admin create-user`.
func runAdmin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create-user" {
		fmt.Fprint(stderr, authUsage)
		return errUsage
	}
	var email, role string
	t, err := openAuthTool(ctx, "tradex admin create-user", args[1:], getenv, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "the user's email (required)")
		fs.StringVar(&role, "role", auth.RoleAdmin, "the user's role: trader, admin or service")
	})
	if err != nil {
		return err
	}
	defer t.stop()
	if strings.TrimSpace(email) == "" {
		return fmt.Errorf("tradex admin create-user: --email is required: %w", errUsage)
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	pw := base64.RawURLEncoding.EncodeToString(secret)
	u, err := t.svc.Register(ctx, email, pw, "", role)
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	out, err := json.MarshalIndent(map[string]any{"userId": u.ID, "email": u.Email, "roles": u.Roles, "password": pw,
		"note": "one-time password: sign in (POST /v1/auth/login); it is shown only here"}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "%s\n", out)
	return err
}
