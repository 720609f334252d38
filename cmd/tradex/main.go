// Command tradex is the one TradeX Mesh binary.
//
//	tradex [serve] [flags]   run the platform (the default)
//	tradex dlq <command>     inspect, redrive and purge dead letters
//	tradex bridge [flags]    carry topics between NATS JetStream and Kafka
//	tradex version           print version information
//	tradex help              print usage
//
// Every flag of serve (and --nats of dlq) can also be set from the environment as TRADEX_<FLAG>,
// upper-cased with dashes as underscores (TRADEX_DATA_DIR=/var/lib/tradex);
// a flag on the command line wins over the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "tradex:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that could not be parsed; the parser has
// already printed what was wrong.
var errUsage = errors.New("usage")

const usage = `TradeX Mesh: a trading platform's event mesh on NATS JetStream.

Usage:
  tradex [serve] [flags]   run the platform (embedded NATS unless --nats is given)
  tradex dlq <command>     inspect, redrive or purge dead letters (tradex dlq help)
  tradex nats config|creds print the NATS users' server configuration or one user's credentials
  tradex sign [flags] PATH print the headers that sign a REST request with an API key
  tradex bench [flags]     load a running platform: orders/s accepted and settled, latency, next to raw JetStream
  tradex bridge [flags]    carry topics between the platform and Kafka (tradex bridge --help)
  tradex auth rotate-key   add a token signing key (the old one verifies until its tokens expire)
  tradex admin create-user create a user (an admin by default) with a one-time password
  tradex version           print version information
  tradex help              print this help

Run "tradex serve --help" for the flags of serve.
`

// run dispatches a subcommand. It reads the environment only through getenv.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := parseServeFlags(args, getenv, stderr)
		if err != nil {
			return err
		}
		logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
		if err != nil {
			return err
		}
		return serve(ctx, logger, cfg, nil)
	case "dlq":
		return runDLQ(ctx, args, getenv, stdout, stderr)
	case "nats":
		return runNATS(args, getenv, stdout, stderr)
	case "auth":
		return runAuth(ctx, args, getenv, stdout, stderr)
	case "admin":
		return runAdmin(ctx, args, getenv, stdout, stderr)
	case "sign":
		return runSign(args, getenv, stdout, stderr, time.Now)
	case "bench":
		return runBench(ctx, args, getenv, stdout, stderr)
	case "bridge":
		return runBridge(ctx, args, getenv, stderr)
	case "version":
		return printVersion(stdout)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	default:
		fmt.Fprintf(stderr, "tradex: unknown command %q\n\n%s", cmd, usage)
		return errUsage
	}
}
