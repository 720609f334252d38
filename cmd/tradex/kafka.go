package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tradex-mesh/tradex/streams"
	"github.com/tradex-mesh/tradex/streams/kafkabridge"
	"github.com/tradex-mesh/tradex/streams/schemaregistry"
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
	// WireFormat is "protobuf" or "confluent".
	WireFormat string
	// RegistryAddr serves the Confluent Schema Registry subset behind HTTP
	// Basic (RegistryUser, the password in RegistryPasswordFile); empty:
	// not served.
	RegistryAddr, RegistryUser, RegistryPasswordFile string
}

// schemaRegistryPasswordFile keeps the schema registry's password in
// serve's data folder.
const schemaRegistryPasswordFile = "schema-registry-password"

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
	fs.StringVar(&c.WireFormat, "kafka-wire-format", c.WireFormat, `exported values: "protobuf" (the payload as it is) or "confluent" (schema id first, for consumers that decode through a schema registry: see --schema-registry-addr)`)
	fs.StringVar(&c.RegistryAddr, "schema-registry-addr", c.RegistryAddr, "serve the Confluent Schema Registry REST subset (GET /subjects, /schemas/ids/{id}, ...) of the platform's schemas on this address, behind HTTP Basic; empty: off")
	fs.StringVar(&c.RegistryUser, "schema-registry-user", c.RegistryUser, "HTTP Basic user of --schema-registry-addr")
	fs.StringVar(&c.RegistryPasswordFile, "schema-registry-password-file", c.RegistryPasswordFile, "file holding the HTTP Basic password of --schema-registry-addr, created with a random one (0600) when missing; serve's default: <data-dir>/"+schemaRegistryPasswordFile)
}

// defaultKafkaConfig is the bridge's defaults.
func defaultKafkaConfig() kafkaConfig {
	return kafkaConfig{Name: kafkabridge.DefaultName, Partitions: 6, Replication: -1,
		WireFormat: kafkabridge.WireProtobuf.String(), RegistryUser: "tradex"}
}

// saslPasswordEnv is the variable that may hold the Kafka SASL password.
const saslPasswordEnv = envPrefix + "KAFKA_SASL_PASSWORD"

// enabled reports whether a bridge was asked for.
func (c kafkaConfig) enabled() bool { return c.Brokers != "" }

// check reports a --kafka-* setting that cannot work before anything
// starts: routes without brokers, an unknown direction, a missing file.
func (c kafkaConfig) check() error {
	if !c.enabled() {
		switch {
		case c.Routes != "":
			return errors.New("--kafka-routes: needs --kafka-brokers")
		case c.RegistryAddr != "":
			return errors.New("--schema-registry-addr: serves the schemas of the Kafka bridge: needs --kafka-brokers")
		}
		return nil
	}
	if c.RegistryAddr != "" {
		if err := checkAddr(c.RegistryAddr); err != nil {
			return fmt.Errorf("--schema-registry-addr: %w", err)
		}
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
	if cfg.WireFormat, err = kafkabridge.ParseWireFormat(c.WireFormat); err != nil {
		return kafkabridge.Config{}, fmt.Errorf("--kafka-wire-format: %w", err)
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
	return clientTLS("--kafka", c.CA, c.ClientCert, c.ClientKey)
}

// saslPassword reads --kafka-sasl-password-file, else the environment.
func (c kafkaConfig) saslPassword() (string, error) {
	if c.SASLPasswordFile == "" {
		if c.SASLPassword != "" {
			return c.SASLPassword, nil
		}
		return "", errors.New("--kafka-sasl-mechanism: needs --kafka-sasl-password-file or " + saslPasswordEnv)
	}
	b, err := os.ReadFile(c.SASLPasswordFile)
	if err != nil {
		return "", fmt.Errorf("--kafka-sasl-password-file: %w", err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// runKafkaBridge starts, in g, the bridge over client (logged in as
// tradex-kafka-bridge) and, when asked for, the schema registry listener;
// a bridge that stops before ctx ends fails g.
func runKafkaBridge(ctx context.Context, g *errgroup.Group, logger *slog.Logger, kc kafkaConfig, client *streams.Client, reg prometheus.Registerer) error {
	bcfg, err := kc.bridgeConfig(logger, reg)
	if err != nil {
		return err
	}
	if kc.RegistryAddr != "" {
		live, err := schemaregistry.Open(ctx, client.JetStream(), schemaregistry.WithLogger(logger))
		if err != nil {
			return fmt.Errorf("--schema-registry-addr: %w", err)
		}
		bcfg.Schemas = live
		g.Go(func() error { return live.Follow(ctx) })
		password, err := passwordFile(kc.RegistryPasswordFile, "--schema-registry-password-file")
		if err != nil {
			return err
		}
		h, err := schemaregistry.NewHandler(live, kc.RegistryUser, password)
		if err != nil {
			return fmt.Errorf("--schema-registry-addr: %w", err)
		}
		addr, err := serveHTTP(ctx, g, "--schema-registry-addr", kc.RegistryAddr, h)
		if err != nil {
			return err
		}
		logger.InfoContext(ctx, "kafka bridge: serving the schema registry", "addr", addr, "user", kc.RegistryUser, "password_file", kc.RegistryPasswordFile)
	}
	b, err := kafkabridge.New(client, bcfg)
	if err != nil {
		return err
	}
	g.Go(func() error {
		err := b.Run(ctx)
		if err == nil && ctx.Err() == nil {
			err = errors.New("kafka bridge stopped")
		}
		return err
	})
	logger.InfoContext(ctx, "kafka bridge: started", "kafka", bcfg.Brokers, "routes", kc.Routes, "name", bcfg.Name, "wire_format", bcfg.WireFormat)
	return nil
}
