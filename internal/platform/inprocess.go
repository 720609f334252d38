package platform

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/gateway"
	gwauth "github.com/tradex-mesh/tradex/gateway/auth"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	"github.com/tradex-mesh/tradex/gen/go/tradex/user/v1/userv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
	"github.com/tradex-mesh/tradex/internal/instruments"
	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/services/order"
	"github.com/tradex-mesh/tradex/streams"
)

// running returns the in-process handler of u's running instance, or a
// Connect Unavailable error while it is not running (as a Connect client
// of a stopped process would see).
func running[H any](u *unit) (H, error) {
	var zero H
	inst := u.current()
	if inst == nil {
		return zero, connect.NewError(connect.CodeUnavailable, fmt.Errorf("%s is not running", u.spec.name))
	}
	h, ok := inst.inProcess.(H)
	if !ok {
		return zero, connect.NewError(connect.CodeInternal, fmt.Errorf("%s has no in-process handler of this kind", u.spec.name))
	}
	return h, nil
}

// walletClient is what the order service calls of the wallet: the one
// running here (whichever instance runs at the time of the call), else a
// Connect client of the one at RemoteURL.
func (p *Platform) walletClient() order.Wallet {
	if u, ok := p.byName[Wallet]; ok {
		return localWallet{u}
	}
	return walletv1connect.NewWalletServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...)
}

// localWallet calls the wallet running in this process.
type localWallet struct{ u *unit }

// handler is the running wallet's.
func (w localWallet) handler() (walletv1connect.WalletServiceHandler, error) {
	return running[walletv1connect.WalletServiceHandler](w.u)
}

// HoldBalance calls the running wallet.
func (w localWallet) HoldBalance(ctx context.Context, req *walletv1.HoldBalanceRequest) (*walletv1.HoldBalanceResponse, error) {
	h, err := w.handler()
	if err != nil {
		return nil, err
	}
	return h.HoldBalance(ctx, req)
}

// ReleaseHold calls the running wallet.
func (w localWallet) ReleaseHold(ctx context.Context, req *walletv1.ReleaseHoldRequest) (*walletv1.ReleaseHoldResponse, error) {
	h, err := w.handler()
	if err != nil {
		return nil, err
	}
	return h.ReleaseHold(ctx, req)
}

// ListHolds calls the running wallet.
func (w localWallet) ListHolds(ctx context.Context, req *walletv1.ListHoldsRequest) (*walletv1.ListHoldsResponse, error) {
	h, err := w.handler()
	if err != nil {
		return nil, err
	}
	return h.ListHolds(ctx, req)
}

// metadataClient is what the instrument cache calls of the metadata
// service: the one running here, else a Connect client of the one at
// RemoteURL.
func (p *Platform) metadataClient() instruments.Client {
	if u, ok := p.byName[Metadata]; ok {
		return localMetadata{u}
	}
	return metadatav1connect.NewMetadataServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...)
}

// marketDataClient is the market data service the order service reads
// the funding index from: the one running here, else the one at
// RemoteURL (nil without one).
func (p *Platform) marketDataClient() order.Books {
	if u, ok := p.byName[MarketData]; ok {
		return localMarketData{u}
	}
	if p.cfg.RemoteURL == "" {
		return nil
	}
	return marketdatav1connect.NewMarketDataServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...)
}

// localMarketData calls the market data service running in this process.
type localMarketData struct{ u *unit }

// GetBook calls the running market data service.
func (m localMarketData) GetBook(ctx context.Context, req *marketdatav1.GetBookRequest) (*marketdatav1.GetBookResponse, error) {
	h, err := running[marketdatav1connect.MarketDataServiceHandler](m.u)
	if err != nil {
		return nil, err
	}
	return h.GetBook(ctx, req)
}

// localMetadata calls the metadata service running in this process.
type localMetadata struct{ u *unit }

// GetInstrument calls the running metadata service.
func (m localMetadata) GetInstrument(ctx context.Context, req *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error) {
	h, err := running[metadatav1connect.MetadataServiceHandler](m.u)
	if err != nil {
		return nil, err
	}
	return h.GetInstrument(ctx, req)
}

// ListInstruments calls the running metadata service.
func (m localMetadata) ListInstruments(ctx context.Context, req *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error) {
	h, err := running[metadatav1connect.MetadataServiceHandler](m.u)
	if err != nil {
		return nil, err
	}
	return h.ListInstruments(ctx, req)
}

// Gateway are the services REST calls: the in-process handlers of the
// services running here (their instances at the time of the call to
// Gateway: call it after Start), else Connect clients at RemoteURL (or
// Unimplemented without one).
func (p *Platform) Gateway() gateway.Services {
	var s gateway.Services
	if p.cfg.RemoteURL != "" {
		s = gateway.Services{
			Orders:     orderv1connect.NewOrderServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...),
			Wallet:     walletv1connect.NewWalletServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...),
			Metadata:   metadatav1connect.NewMetadataServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...),
			MarketData: marketdatav1connect.NewMarketDataServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...),
			Auth:       authv1connect.NewAuthServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...),
			User:       userv1connect.NewUserServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...),
		}
	}
	setLocal(p, Order, &s.Orders)
	setLocal(p, Wallet, &s.Wallet)
	setLocal(p, Metadata, &s.Metadata)
	setLocal(p, MarketData, &s.MarketData)
	setLocal(p, Auth, &s.Auth)
	setLocal(p, User, &s.User)
	return s
}

// setLocal points *dst at the in-process handler of the named service
// when it runs here.
func setLocal[H any](p *Platform, name string, dst *H) {
	u, ok := p.byName[name]
	if !ok {
		return
	}
	if h, err := running[H](u); err == nil {
		*dst = h
	}
}

// AuthClient is the auth service for the gateway's verifier: the one
// running here, else the one at the remote URL. Its calls carry no
// principal: they are the platform's own (trusted) calls.
func (p *Platform) AuthClient() gwauth.Service {
	if u, ok := p.byName[Auth]; ok {
		return localAuth{u}
	}
	return authv1connect.NewAuthServiceClient(p.httpClient, p.cfg.RemoteURL, p.remoteOptions()...)
}

// localAuth calls the auth service running in this process.
type localAuth struct{ u *unit }

// GetSigningKeys calls the running auth service.
func (a localAuth) GetSigningKeys(ctx context.Context, req *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error) {
	h, err := running[authv1connect.AuthServiceHandler](a.u)
	if err != nil {
		return nil, err
	}
	return h.GetSigningKeys(ctx, req)
}

// VerifyApiKey calls the running auth service.
func (a localAuth) VerifyApiKey(ctx context.Context, req *authv1.VerifyApiKeyRequest) (*authv1.VerifyApiKeyResponse, error) { //nolint:revive // the generated name
	h, err := running[authv1connect.AuthServiceHandler](a.u)
	if err != nil {
		return nil, err
	}
	return h.VerifyApiKey(ctx, req)
}

// FollowUsers hands fn every user's state from auth.user.v1, from the
// first event on, until ctx ends: the gateway's verifier learns whom the
// auth service disabled. Call it after Start.
func (p *Platform) FollowUsers(ctx context.Context, fn func(userID string, disabled bool)) error {
	return p.mesh.Follow(ctx, streams.Follow{Topic: streams.TopicUserEvent}, func(_ context.Context, m streams.Stored) error {
		var ev authv1.UserEvent
		if err := proto.Unmarshal(m.Data, &ev); err != nil {
			return nil // not ours to judge: the user service dead-letters what it cannot read
		}
		if u := auth.UserOf(&ev); u != nil {
			fn(u.GetUserId(), u.GetStatus() == authv1.UserStatus_USER_STATUS_DISABLED)
		}
		return nil
	})
}

// RotateAuthKey rotates the token signing key of the auth service running
// here and returns the new key's id: new tokens are signed with it, and
// the old key stays published until its tokens expire.
func (p *Platform) RotateAuthKey(ctx context.Context) (string, error) {
	u, ok := p.byName[Auth]
	if !ok {
		return "", errors.New("the auth service does not run in this process")
	}
	inst := u.current()
	if inst == nil {
		return "", connect.NewError(connect.CodeUnavailable, errors.New("auth is not running"))
	}
	r, ok := inst.svc.(interface {
		RotateKey(ctx context.Context) (string, error)
	})
	if !ok {
		return "", errors.New("the auth service cannot rotate keys")
	}
	return r.RotateKey(ctx)
}

// BootstrapAdmin creates an admin with email and a random password when
// the auth service running here has no user yet (a first start), and
// returns the password; "" when there were users already.
func (p *Platform) BootstrapAdmin(ctx context.Context, email string) (string, error) {
	u, ok := p.byName[Auth]
	if !ok {
		return "", errors.New("the auth service does not run in this process")
	}
	inst := u.current()
	if inst == nil {
		return "", connect.NewError(connect.CodeUnavailable, errors.New("auth is not running"))
	}
	svc, ok := inst.svc.(*auth.Service)
	if !ok {
		return "", errors.New("the auth service cannot create users here")
	}
	users, err := svc.Users(ctx)
	if err != nil || len(users) > 0 {
		return "", err
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails
	pw := base64.RawURLEncoding.EncodeToString(secret)
	if _, err := svc.Register(ctx, email, pw, "bootstrap admin", auth.RoleAdmin); err != nil {
		return "", fmt.Errorf("bootstrap admin: %w", err)
	}
	return pw, nil
}

// remoteOptions are the options of the Connect clients of services in
// other processes: they record a client span and carry the trace, and
// forward the caller's principal, so that those services check it as they
// would in process.
func (p *Platform) remoteOptions() []connect.ClientOption {
	return []connect.ClientOption{connect.WithInterceptors(p.tracer, gwauth.ForwardPrincipal())}
}
