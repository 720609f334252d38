package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/internal/rpcserver"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/streams"
)

// platform is what every service is built from.
type platform struct {
	logger   *slog.Logger
	js       jetstream.JetStream
	catalog  *streams.Catalog
	replicas int
}

// component is one service as serve runs it: its background work and the
// Connect services it serves.
type component struct {
	name    string
	run     func(ctx context.Context) error
	ready   <-chan struct{}
	connect []rpcserver.Service
}

// serviceBuilder builds one service from the platform.
type serviceBuilder struct {
	name  string
	build func(p platform) (component, error)
}

// serviceBuilders lists every service tradex can run, in start order.
func serviceBuilders() []serviceBuilder {
	return []serviceBuilder{
		{name: "metadata", build: buildMetadata},
	}
}

// selectServices resolves the --services list ("all" or names) to builders.
func selectServices(list string) ([]serviceBuilder, error) {
	all := serviceBuilders()
	if strings.TrimSpace(list) == "all" {
		return all, nil
	}
	names := make([]string, 0, len(all))
	for _, b := range all {
		names = append(names, b.name)
	}
	var out []serviceBuilder
	for _, want := range strings.Split(list, ",") {
		want = strings.TrimSpace(want)
		if want == "" {
			continue
		}
		i := slices.Index(names, want)
		if i < 0 {
			return nil, fmt.Errorf("--services: unknown service %q (available: all, %s)", want, strings.Join(names, ", "))
		}
		if !slices.ContainsFunc(out, func(b serviceBuilder) bool { return b.name == want }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

func buildMetadata(p platform) (component, error) {
	cfg := metadata.Default()
	cfg.Replicas = p.replicas
	svc, err := metadata.New(cfg, metadata.Deps{
		Logger:    p.logger.With("service", "metadata"),
		JetStream: p.js,
		Publisher: streams.NewPublisher(p.js, p.catalog, streams.WithSource("tradex/metadata")),
	})
	if err != nil {
		return component{}, fmt.Errorf("metadata: %w", err)
	}
	path, h := svc.Handler()
	return component{
		name:    "metadata",
		run:     svc.Run,
		ready:   svc.Ready(),
		connect: []rpcserver.Service{{Name: metadatav1connect.MetadataServiceName, Path: path, Handler: h}},
	}, nil
}
