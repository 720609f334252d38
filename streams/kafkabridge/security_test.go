package kafkabridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	"github.com/tradex-mesh/tradex/internal/tlsconfig"
)

// A Kafka that takes only TLS connections authenticated with SASL: the
// bridge carries both ways with each mechanism, and a wrong password
// stores nothing.
func TestBridgeOverTLSWithSASL(t *testing.T) {
	t.Parallel()
	certPEM, keyPEM, err := tlsconfig.SelfSigned([]string{"127.0.0.1", "localhost"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	client := tlsconfig.Client(roots, nil)
	for _, mech := range []string{SASLPlain, SASLScramSHA256, SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			kafka := newKafka(t, kfake.TLS(tlsconfig.Server(cert, nil)), kfake.EnableSASL(), kfake.Superuser(mech, "bridge", "s3cret"))
			f := newFixtureOn(t, embeddedtest.New(t).JetStream(), kafka,
				[]kgo.Opt{kgo.DialTLSConfig(client.Clone()), kgo.SASL(mustSASL(t, mech, "bridge", "s3cret"))})

			wrong := f.config(Route{exportTopic, Export})
			wrong.Name, wrong.TLS, wrong.SASL = "wrong-password", client, mustSASL(t, mech, "bridge", "guess")
			b, err := New(f.client, wrong)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			if err := b.ensureTopics(ctx); err == nil {
				t.Fatal("a wrong password reached Kafka")
			}

			cfg := f.config(Route{exportTopic, Export}, Route{importTopic, Import})
			cfg.TLS, cfg.SASL = client, mustSASL(t, mech, "bridge", "s3cret")
			f.run(t, cfg)
			f.publishEvents(t.Context(), t, []string{"BTCUSDT"}, 5)
			f.produceCommands(t, []string{"ETHUSDT"}, 0, 5)
			f.checkBothWays(t, 5, 5)
		})
	}
}

func TestSASLMechanismRefusesWhatItCannotUse(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ mech, user, pass, want string }{
		{"GSSAPI", "u", "p", "GSSAPI"},
		{"PLAIN", "", "p", "user"},
		{"SCRAM-SHA-256", "u", "", "password"},
	} {
		if _, err := SASLMechanism(c.mech, c.user, c.pass); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SASLMechanism(%q, %q, %q) = %v, want an error naming %q", c.mech, c.user, c.pass, err, c.want)
		}
	}
	if m, err := SASLMechanism("scram-sha-512", "u", "p"); err != nil || m.Name() != SASLScramSHA512 {
		t.Errorf("lower-case name: %v, %v", m, err)
	}
}

func mustSASL(t *testing.T, mech, user, pass string) sasl.Mechanism {
	t.Helper()
	m, err := SASLMechanism(mech, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
