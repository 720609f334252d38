package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tradex-mesh/tradex/internal/platform"
)

// Bootstrap admin: the first start creates an admin with a random
// password and writes it to the data folder (0600), so that there is no
// default password; an operator signs in with it, creates their own admin
// and disables this one.
const (
	bootstrapAdminFile  = "bootstrap-admin.json"
	bootstrapAdminEmail = "admin@tradex.local"
)

// bootstrapCredential is the file's content.
type bootstrapCredential struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Note     string `json:"note"`
}

// bootstrapAdmin creates the bootstrap admin when the auth service has no
// user, and says where its credential is.
func bootstrapAdmin(ctx context.Context, logger *slog.Logger, p *platform.Platform, dataDir string) error {
	pw, err := p.BootstrapAdmin(ctx, bootstrapAdminEmail)
	if err != nil || pw == "" {
		return err
	}
	path := filepath.Join(dataDir, bootstrapAdminFile)
	b, err := json.MarshalIndent(bootstrapCredential{Email: bootstrapAdminEmail, Password: pw, //nolint:gosec // the file is the credential, 0600
		Note: "one-time admin: sign in (POST /v1/auth/login), make your own admin, then disable this one and delete this file"}, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	logger.InfoContext(ctx, "bootstrap admin created: its email and one-time password are in the file; sign in with POST /v1/auth/login",
		"email", bootstrapAdminEmail, "file", path)
	return nil
}

// authMode describes --auth for the start-up log.
func authMode(cfg serveConfig) string {
	if cfg.Auth == "dev" {
		return "dev (bearer token = account id; admin token in --admin-token or " + filepath.Join(cfg.DataDir, adminTokenFile) + ")"
	}
	return "jwt (access tokens and signed API keys from the auth service)"
}
