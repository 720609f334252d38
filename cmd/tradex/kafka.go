package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tradex-mesh/tradex/internal/tlsconfig"
	"github.com/tradex-mesh/tradex/streams/kafkabridge"
)

// kafkaConfig is how the Kafka bridge reaches Kafka and what it carries:
// the --kafka-* flags of tradex bridge and tradex serve.
type kafkaConfig struct {
	// Brokers are the seed brokers (comma-separated host:port); empty: no
	// bridge.
	Brokers string
	// Routes are "topic=export|import|both,...".
	Routes string
	// Name is the consumer group and durable consumer name.
	Name string
	// Partitions and Replication shape the topics the bridge creates.
	Partitions  int
	Replication int
	// TLS connects over TLS; CA, ClientCert and ClientKey configure it.
	TLS                       bool
	CA, ClientCert, ClientKey string
	// SASLMechanism, SASLUser and SASLPasswordFile authenticate (the
	// password may also come from TRADEX_KAFKA_SASL_PASSWORD).
	SASLMechanism, SASLUser, SASLPasswordFile string
	// SASLPassword is TRADEX_KAFKA_SASL_PASSWORD, used without a file.
	SASLPassword string
}

// kafkaFlags declares the --kafka-* flags.
func kafkaFlags(fs *flag.FlagSet, c *kafkaConfig) {
	fs.StringVar(&c.Brokers, "kafka-brokers", c.Brokers, "Kafka seed brokers (comma-separated host:port); set, the Kafka bridge runs")
	fs.StringVar(&c.Routes, "kafka-routes", c.Routes, `topics the Kafka bridge carries and which way: "topic=export|import|both,..." (export: JetStream to Kafka), e.g. "engine.event.v1=export,engine.order.v1=import"`)
	fs.StringVar(&c.Name, "kafka-name", c.Name, "the bridge's consumer group and durable consumer name, shared by its replicas")
	fs.IntVar(&c.Partitions, "kafka-partitions", c.Partitions, "partitions of the Kafka topics the bridge creates when missing")
	fs.IntVar(&c.Replication, "kafka-replication", c.Replication, "replication factor of the Kafka topics the bridge creates (-1: the brokers' default)")
	fs.BoolVar(&c.TLS, "kafka-tls", c.TLS, "connect to Kafka over TLS (the system's roots unless --kafka-ca)")
	fs.StringVar(&c.CA, "kafka-ca", c.CA, "CA file (PEM) trusted for the Kafka brokers' certificates; implies --kafka-tls")
	fs.StringVar(&c.ClientCert, "kafka-client-cert", c.ClientCert, "client certificate file (PEM) presented to Kafka; needs --kafka-client-key; implies --kafka-tls")
	fs.StringVar(&c.ClientKey, "kafka-client-key", c.ClientKey, "private key file (PEM) of --kafka-client-cert")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", c.SASLMechanism, "Kafka SASL mechanism: PLAIN (over TLS only), SCRAM-SHA-256 or SCRAM-SHA-512; empty: none")
	fs.StringVar(&c.SASLUser, "kafka-sasl-user", c.SASLUser, "Kafka SASL user")
	fs.StringVar(&c.SASLPasswordFile, "kafka-sasl-password-file", c.SASLPasswordFile, "file holding the Kafka SASL password (or set "+envPrefix+"KAFKA_SASL_PASSWORD)")
}

// defaultKafkaConfig is the bridge's defaults, with the SASL password
// from the environment.
func defaultKafkaConfig(getenv func(string) string) kafkaConfig {
	return kafkaConfig{Name: kafkabridge.DefaultName, Partitions: 6, Replication: -1,
		SASLPassword: getenv(envPrefix + "KAFKA_SASL_PASSWORD")}
}

// enabled reports whether a bridge was asked for.
func (c kafkaConfig) enabled() bool { return c.Brokers != "" }

// check reports a --kafka-* setting that cannot work before anything
// starts: routes without brokers, an unknown direction, a missing file.
func (c kafkaConfig) check() error {
	if !c.enabled() {
		if c.Routes != "" {
			return errors.New("--kafka-routes: needs --kafka-brokers")
		}
		return nil
	}
	_, err := c.bridgeConfig(nil, nil)
	return err
}

// bridgeConfig is the bridge's configuration, reading the files the flags
// name.
func (c kafkaConfig) bridgeConfig(logger *slog.Logger, reg prometheus.Registerer) (kafkabridge.Config, error) {
	routes, err := kafkabridge.ParseRoutes(c.Routes)
	if err != nil {
		return kafkabridge.Config{}, fmt.Errorf("--kafka-routes: %w", err)
	}
	if len(routes) == 0 {
		return kafkabridge.Config{}, errors.New("--kafka-routes: name the topics to bridge, e.g. engine.event.v1=export")
	}
	if c.Partitions < 1 || c.Partitions > 1<<16 {
		return kafkabridge.Config{}, fmt.Errorf("--kafka-partitions %d: want 1 to 65536", c.Partitions)
	}
	if c.Replication < -1 || c.Replication == 0 || c.Replication > 1<<8 {
		return kafkabridge.Config{}, fmt.Errorf("--kafka-replication %d: want -1 or 1 to 256", c.Replication)
	}
	cfg := kafkabridge.Config{
		Brokers: splitList(c.Brokers), Routes: routes, Name: c.Name,
		Partitions: int32(c.Partitions), ReplicationFactor: int16(c.Replication),
		Logger: logger, Metrics: reg,
	}
	if cfg.TLS, err = c.tlsConfig(); err != nil {
		return kafkabridge.Config{}, err
	}
	if c.SASLMechanism != "" {
		password, err := c.saslPassword()
		if err != nil {
			return kafkabridge.Config{}, err
		}
		if strings.EqualFold(c.SASLMechanism, kafkabridge.SASLPlain) && cfg.TLS == nil {
			return kafkabridge.Config{}, errors.New("--kafka-sasl-mechanism PLAIN sends the password in the clear: add --kafka-tls")
		}
		if cfg.SASL, err = kafkabridge.SASLMechanism(c.SASLMechanism, c.SASLUser, password); err != nil {
			return kafkabridge.Config{}, fmt.Errorf("--kafka-sasl-mechanism: %w", err)
		}
	}
	return cfg, nil
}

// tlsConfig is the Kafka client's TLS, nil for plaintext.
func (c kafkaConfig) tlsConfig() (*tls.Config, error) {
	if !c.TLS && c.CA == "" && c.ClientCert == "" {
		return nil, nil
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return nil, errors.New("--kafka-client-cert and --kafka-client-key go together")
	}
	var roots *x509.CertPool // nil: the system's roots
	if c.CA != "" {
		var err error
		if roots, err = tlsconfig.LoadPool(c.CA); err != nil {
			return nil, fmt.Errorf("--kafka-ca: %w", err)
		}
	}
	var cert *tls.Certificate
	if c.ClientCert != "" {
		kp, err := tlsconfig.LoadKeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("--kafka-client-cert, --kafka-client-key: %w", err)
		}
		cert = &kp
	}
	return tlsconfig.Client(roots, cert), nil
}

// saslPassword reads --kafka-sasl-password-file, else the environment.
func (c kafkaConfig) saslPassword() (string, error) {
	if c.SASLPasswordFile == "" {
		if c.SASLPassword != "" {
			return c.SASLPassword, nil
		}
		return "", errors.New("--kafka-sasl-mechanism: needs --kafka-sasl-password-file or " + envPrefix + "KAFKA_SASL_PASSWORD")
	}
	b, err := os.ReadFile(c.SASLPasswordFile)
	if err != nil {
		return "", fmt.Errorf("--kafka-sasl-password-file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
