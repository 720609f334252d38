package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/services/auth/signature"
)

// runSign prints the headers that sign one REST request with an API key,
// as curl arguments:
//
//	curl $(tradex sign --key-id ak.. --secret .. --method POST --body "$BODY" /v1/orders) ...
//
// The secret (or the Ed25519 private key) comes from --secret,
// --ed25519-key or TRADEX_API_SECRET; it never needs to be on the command
// line.
func runSign(args []string, getenv func(string) string, stdout, stderr io.Writer, now func() time.Time) error {
	fs := flag.NewFlagSet("tradex sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyID := fs.String("key-id", getenv(envPrefix+"API_KEY"), "the API key's id (X-TX-APIKEY); env TRADEX_API_KEY")
	secret := fs.String("secret", getenv(envPrefix+"API_SECRET"), "the HMAC secret (hex) shown when the key was created; env TRADEX_API_SECRET")
	edKey := fs.String("ed25519-key", getenv(envPrefix+"API_ED25519_KEY"), "the Ed25519 private key (base64, 64 bytes), for a key made from its public half; env TRADEX_API_ED25519_KEY")
	method := fs.String("method", http.MethodGet, "the request's method")
	body := fs.String("body", "", "the request's body, exactly as sent")
	window := fs.Int("recv-window", 0, "X-TX-RECV-WINDOW in milliseconds (0: the server's default, 5000)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || !strings.HasPrefix(fs.Arg(0), "/") {
		return fmt.Errorf("tradex sign: give the request's path with its query, e.g. /v1/orders?limit=5: %w", errUsage)
	}
	if *keyID == "" {
		return fmt.Errorf("tradex sign: --key-id is required: %w", errUsage)
	}
	ts := now().UnixMilli()
	msg := signature.Message(ts, strings.ToUpper(*method), fs.Arg(0), []byte(*body))
	var sig string
	switch {
	case *edKey != "":
		priv, err := base64.StdEncoding.DecodeString(*edKey)
		if err != nil || len(priv) != ed25519.PrivateKeySize {
			return errors.New("tradex sign: --ed25519-key must be a 64-byte Ed25519 private key in base64")
		}
		sig = signature.SignEd25519(priv, msg)
	case *secret != "":
		sig = signature.SignHMAC([]byte(*secret), msg)
	default:
		return fmt.Errorf("tradex sign: --secret or --ed25519-key is required: %w", errUsage)
	}
	// Header:value without spaces or quotes, so that the shell's word
	// splitting of $(tradex sign ...) hands curl whole arguments.
	headers := []string{signature.HeaderKey + ":" + *keyID, signature.HeaderTimestamp + ":" + strconv.FormatInt(ts, 10),
		signature.HeaderSignature + ":" + sig}
	if *window > 0 {
		headers = append(headers, signature.HeaderRecvWindow+":"+strconv.Itoa(*window))
	}
	for _, h := range headers {
		if strings.ContainsAny(h, " \t\n'\"") {
			return fmt.Errorf("tradex sign: %q cannot be passed to a shell unquoted", h)
		}
		if _, err := fmt.Fprintf(stdout, "-H %s\n", h); err != nil {
			return fmt.Errorf("tradex sign: %w", err)
		}
	}
	return nil
}
