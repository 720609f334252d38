package main

import (
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"github.com/tradex-mesh/tradex/internal/platform"
	"github.com/tradex-mesh/tradex/streams"
)

const natsUsage = `Usage:
  tradex nats config [flags]   print the nats-server authorization block that admits the
                               platform's users (for an external cluster: --nats)
  tradex nats creds [flags]    print one user's credentials (default: tradex-reader, which
                               may read every topic and publish nothing)

Flags:
  --data-dir DIR            where tradex serve keeps nats-credentials.json (default data)
  --nats-credentials FILE   the credentials file itself (created if missing)
  --user NAME               creds: the user (` + "tradex-reader, tradex-admin, tradex-<service>" + `)
`

// runNATS prints the platform's NATS users: a server configuration or one
// user's credentials.
func runNATS(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "config" && args[0] != "creds") {
		fmt.Fprint(stderr, natsUsage)
		return errUsage
	}
	command := args[0]
	fs := flag.NewFlagSet("tradex nats "+command, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, natsUsage) }
	dataDir := fs.String("data-dir", orDefault(getenv(envPrefix+"DATA_DIR"), "data"), "")
	file := fs.String("nats-credentials", getenv(envPrefix+"NATS_CREDENTIALS"), "")
	user := fs.String("user", platform.UserReader, "")
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *file == "" {
		*file = filepath.Join(*dataDir, natsCredentialsFile)
	}
	creds, err := platform.EnsureCredentials(*file)
	if err != nil {
		return err
	}
	if command == "config" {
		conf, err := creds.ServerConfig(streams.DefaultCatalog())
		if err != nil {
			return err
		}
		_, err = io.WriteString(stdout, conf)
		return err
	}
	if !slices.Contains(platform.UserNames(), *user) {
		return fmt.Errorf("--user: no user %q (users: %s)", *user, strings.Join(platform.UserNames(), ", "))
	}
	_, err = fmt.Fprintf(stdout, "user: %s\npassword: %s\ninbox prefix: %s\n", *user, creds[*user], streams.InboxPrefix(*user))
	return err
}

// orDefault is v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
