package platform

import (
	"context"
	"fmt"
	"net/http"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/user/v1/userv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/services/marketdata"
	"github.com/tradex-mesh/tradex/services/matching"
	"github.com/tradex-mesh/tradex/services/metadata"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/services/user"
	"github.com/tradex-mesh/tradex/services/wallet"
	"github.com/tradex-mesh/tradex/streams"
)

// service is what the platform runs of a built service.
type service interface {
	Run(ctx context.Context) error
	Ready() <-chan struct{}
}

// built is one instance of a service, ready to run.
type built struct {
	svc service
	// path and handler are its Connect handler (none for matching).
	path    string
	handler http.Handler
	// inProcess is its in-process handler (the generated
	// <Service>Handler interface), nil for matching.
	inProcess any
}

// spec says how to build one service and what to watch of it.
type spec struct {
	name string
	// connect is the full name of the Connect service it serves, if any.
	connect string
	// needs are the services it calls (the instrument cache counts as a
	// call to metadata).
	needs []string
	// consumers are its durable consumers, watched for lag.
	consumers func(Config) []consumerRef
	build     func(p *Platform, mesh *streams.Client) (built, error)
}

// consumerRef names a durable consumer of a topic.
type consumerRef struct{ topic, name string }

// connectService is a service with a Connect handler and an in-process
// one.
type connectService[H any] interface {
	service
	Handler(opts ...connect.HandlerOption) (string, http.Handler)
	InProcess() H
}

// served is a built service with its handlers, made with the platform's
// handler options.
func served[H any](p *Platform, svc connectService[H]) built {
	path, h := svc.Handler(p.handlerOptions)
	return built{svc: svc, path: path, handler: h, inProcess: svc.InProcess()}
}

// specs are the services the platform knows, by name (Names gives the
// start order).
func specs() map[string]spec {
	return map[string]spec{
		Metadata: {name: Metadata, connect: metadatav1connect.MetadataServiceName, build: buildMetadata},
		Auth:     {name: Auth, connect: authv1connect.AuthServiceName, build: buildAuth},
		User: {name: User, connect: userv1connect.UserServiceName, build: buildUser,
			consumers: func(c Config) []consumerRef {
				return []consumerRef{{streams.TopicUserEvent, c.User.ConsumerName}}
			}},
		Wallet: {name: Wallet, connect: walletv1connect.WalletServiceName, needs: []string{Metadata}, build: buildWallet,
			consumers: func(c Config) []consumerRef {
				return []consumerRef{{streams.TopicEngineEvent, c.Wallet.ConsumerName}}
			}},
		Order: {name: Order, connect: orderv1connect.OrderServiceName, needs: []string{Metadata, Wallet}, build: buildOrder,
			consumers: func(c Config) []consumerRef {
				return []consumerRef{{streams.TopicEngineEvent, c.Order.ConsumerName}}
			}},
		Matching: {name: Matching, build: buildMatching, consumers: matchingConsumers},
		MarketData: {name: MarketData, connect: marketdatav1connect.MarketDataServiceName, needs: []string{Metadata},
			build: buildMarketData},
	}
}

// matchingConsumers are the engine's consumers: one for every instrument,
// or one per configured instrument.
func matchingConsumers(c Config) []consumerRef {
	if len(c.Matching.Instruments) == 0 {
		return []consumerRef{{streams.TopicOrderCommand, c.Matching.ConsumerName}}
	}
	out := make([]consumerRef, 0, len(c.Matching.Instruments))
	for _, inst := range c.Matching.Instruments {
		out = append(out, consumerRef{streams.TopicOrderCommand, c.Matching.ConsumerName + "-" + inst})
	}
	return out
}

func buildMetadata(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := metadata.New(p.cfg.Metadata, metadata.Deps{
		Logger: p.serviceLogger(Metadata), Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/metadata")),
	})
	if err != nil {
		return built{}, fmt.Errorf("metadata: %w", err)
	}
	return served(p, svc), nil
}

func buildAuth(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := auth.New(p.cfg.Auth, auth.Deps{
		Logger: p.serviceLogger(Auth), Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/auth")),
	})
	if err != nil {
		return built{}, fmt.Errorf("auth: %w", err)
	}
	return served(p, svc), nil
}

func buildUser(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := user.New(p.cfg.User, user.Deps{Logger: p.serviceLogger(User), Streams: mesh})
	if err != nil {
		return built{}, fmt.Errorf("user: %w", err)
	}
	return served(p, svc), nil
}

func buildWallet(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := wallet.New(p.cfg.Wallet, wallet.Deps{
		Logger: p.serviceLogger(Wallet), Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/wallet")),
		Instruments: p.instruments,
	})
	if err != nil {
		return built{}, fmt.Errorf("wallet: %w", err)
	}
	return served(p, svc), nil
}

func buildOrder(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := order.New(p.cfg.Order, order.Deps{
		Logger: p.serviceLogger(Order), Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/order")),
		Instruments: p.instruments, Wallet: p.walletClient(), Backlog: p.settlementBacklog(), Books: p.marketDataClient(),
		Clock: p.orderClock,
	})
	if err != nil {
		return built{}, fmt.Errorf("order: %w", err)
	}
	return served(p, svc), nil
}

func buildMatching(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := matching.New(p.cfg.Matching, matching.Deps{
		Logger: p.serviceLogger(Matching), Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/matching")),
	})
	if err != nil {
		return built{}, fmt.Errorf("matching: %w", err)
	}
	return built{svc: svc}, nil
}

func buildMarketData(p *Platform, mesh *streams.Client) (built, error) {
	svc, err := marketdata.New(p.cfg.MarketData, marketdata.Deps{
		Logger: p.serviceLogger(MarketData), Streams: mesh, Instruments: p.instruments,
		Publisher: mesh.Publisher(streams.WithSource("tradex/marketdata")),
	})
	if err != nil {
		return built{}, fmt.Errorf("marketdata: %w", err)
	}
	return served(p, svc), nil
}
