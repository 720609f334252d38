package gateway

import (
	"context"
	"net/http"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1/authv1connect"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1/marketdatav1connect"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1/metadatav1connect"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/order/v1/orderv1connect"
	userv1 "github.com/tradex-mesh/tradex/gen/go/tradex/user/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/user/v1/userv1connect"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
)

// Orders is what REST uses of the order service (its Connect client or
// in-process handler).
type Orders interface {
	PlaceOrder(context.Context, *orderv1.PlaceOrderRequest) (*orderv1.PlaceOrderResponse, error)
	CancelOrder(context.Context, *orderv1.CancelOrderRequest) (*orderv1.CancelOrderResponse, error)
	GetOrder(context.Context, *orderv1.GetOrderRequest) (*orderv1.GetOrderResponse, error)
	ListOrders(context.Context, *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error)
	SetLeverage(context.Context, *orderv1.SetLeverageRequest) (*orderv1.SetLeverageResponse, error)
	GetLeverage(context.Context, *orderv1.GetLeverageRequest) (*orderv1.GetLeverageResponse, error)
	AdjustMargin(context.Context, *orderv1.AdjustMarginRequest) (*orderv1.AdjustMarginResponse, error)
}

// Wallet is what REST uses of the wallet service.
type Wallet interface {
	GetBalance(context.Context, *walletv1.GetBalanceRequest) (*walletv1.GetBalanceResponse, error)
	ListBalances(context.Context, *walletv1.ListBalancesRequest) (*walletv1.ListBalancesResponse, error)
	Deposit(context.Context, *walletv1.DepositRequest) (*walletv1.DepositResponse, error)
	Withdraw(context.Context, *walletv1.WithdrawRequest) (*walletv1.WithdrawResponse, error)
	GetPositions(context.Context, *walletv1.GetPositionsRequest) (*walletv1.GetPositionsResponse, error)
}

// Metadata is what REST uses of the metadata service.
type Metadata interface {
	GetInstrument(context.Context, *metadatav1.GetInstrumentRequest) (*metadatav1.GetInstrumentResponse, error)
	ListInstruments(context.Context, *metadatav1.ListInstrumentsRequest) (*metadatav1.ListInstrumentsResponse, error)
	CreateInstrument(context.Context, *metadatav1.CreateInstrumentRequest) (*metadatav1.CreateInstrumentResponse, error)
	UpdateInstrument(context.Context, *metadatav1.UpdateInstrumentRequest) (*metadatav1.UpdateInstrumentResponse, error)
	HaltInstrument(context.Context, *metadatav1.HaltInstrumentRequest) (*metadatav1.HaltInstrumentResponse, error)
	ResumeInstrument(context.Context, *metadatav1.ResumeInstrumentRequest) (*metadatav1.ResumeInstrumentResponse, error)
}

// Auth is what REST uses of the auth service.
type Auth interface {
	Register(context.Context, *authv1.RegisterRequest) (*authv1.RegisterResponse, error)
	Login(context.Context, *authv1.LoginRequest) (*authv1.LoginResponse, error)
	Refresh(context.Context, *authv1.RefreshRequest) (*authv1.RefreshResponse, error)
	Logout(context.Context, *authv1.LogoutRequest) (*authv1.LogoutResponse, error)
	CreateApiKey(context.Context, *authv1.CreateApiKeyRequest) (*authv1.CreateApiKeyResponse, error)
	ListApiKeys(context.Context, *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error)
	RevokeApiKey(context.Context, *authv1.RevokeApiKeyRequest) (*authv1.RevokeApiKeyResponse, error)
	GetSigningKeys(context.Context, *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error)
	ListUsers(context.Context, *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error)
	SetUserRoles(context.Context, *authv1.SetUserRolesRequest) (*authv1.SetUserRolesResponse, error)
	DisableUser(context.Context, *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error)
}

// User is what REST uses of the user service.
type User interface {
	GetProfile(context.Context, *userv1.GetProfileRequest) (*userv1.GetProfileResponse, error)
	UpdateProfile(context.Context, *userv1.UpdateProfileRequest) (*userv1.UpdateProfileResponse, error)
}

// MarketData is what REST uses of the market data service.
type MarketData interface {
	GetBook(context.Context, *marketdatav1.GetBookRequest) (*marketdatav1.GetBookResponse, error)
	ListTrades(context.Context, *marketdatav1.ListTradesRequest) (*marketdatav1.ListTradesResponse, error)
	GetTicker(context.Context, *marketdatav1.GetTickerRequest) (*marketdatav1.GetTickerResponse, error)
	GetMarkPrice(context.Context, *marketdatav1.GetMarkPriceRequest) (*marketdatav1.GetMarkPriceResponse, error)
	ListTickers(context.Context, *marketdatav1.ListTickersRequest) (*marketdatav1.ListTickersResponse, error)
	ListCandles(context.Context, *marketdatav1.ListCandlesRequest) (*marketdatav1.ListCandlesResponse, error)
}

// Services are the services behind REST. A nil one answers Unimplemented.
type Services struct {
	Orders     Orders
	Wallet     Wallet
	Metadata   Metadata
	MarketData MarketData
	Auth       Auth
	User       User
}

// orUnimplemented replaces the services not given with ones that answer
// Unimplemented.
func (s Services) orUnimplemented() Services {
	if s.Orders == nil {
		s.Orders = orderv1connect.UnimplementedOrderServiceHandler{}
	}
	if s.Wallet == nil {
		s.Wallet = walletv1connect.UnimplementedWalletServiceHandler{}
	}
	if s.Metadata == nil {
		s.Metadata = metadatav1connect.UnimplementedMetadataServiceHandler{}
	}
	if s.MarketData == nil {
		s.MarketData = marketdatav1connect.UnimplementedMarketDataServiceHandler{}
	}
	if s.Auth == nil {
		s.Auth = authv1connect.UnimplementedAuthServiceHandler{}
	}
	if s.User == nil {
		s.User = userv1connect.UnimplementedUserServiceHandler{}
	}
	return s
}

// candleIntervals are the usual short names of the candle intervals.
var candleIntervals = map[string]string{
	"1m": "one_minute", "5m": "five_minutes", "15m": "fifteen_minutes", "1h": "one_hour",
	"4h": "four_hours", "1d": "one_day", "1w": "one_week",
}

var pageQuery = map[string]string{"pageSize": "page.pageSize", "pageToken": "page.pageToken"}

func withPage(q map[string]string) map[string]string {
	for k, v := range pageQuery {
		q[k] = v
	}
	return q
}

// restRoutes is the REST API: every route, in the order of the docs.
func (g *Gateway) restRoutes() []route {
	s := g.services
	return []route{
		// Orders.
		{method: http.MethodPost, path: "/v1/orders", summary: "Place an order", access: userTrade, body: true,
			account: "accountId", idempotency: "clientOrderId", status: http.StatusCreated, endpoint: unary(s.Orders.PlaceOrder)},
		{method: http.MethodGet, path: "/v1/orders", summary: "List orders, newest first", access: userRead, account: "accountId",
			query:    withPage(map[string]string{"accountId": "accountId", "instrumentId": "instrumentId", "status": "statuses"}),
			endpoint: unary(s.Orders.ListOrders)},
		{method: http.MethodGet, path: "/v1/orders/:orderId", summary: "Get an order", access: userRead, account: "accountId",
			params: map[string]string{"orderId": "orderId"}, query: map[string]string{"accountId": "accountId"},
			endpoint: unary(s.Orders.GetOrder)},
		{method: http.MethodDelete, path: "/v1/orders/:orderId", summary: "Cancel an order", access: userTrade, account: "accountId",
			params: map[string]string{"orderId": "orderId"}, query: map[string]string{"accountId": "accountId"},
			endpoint: unary(s.Orders.CancelOrder)},
		// Leverage on perpetuals.
		{method: http.MethodGet, path: "/v1/leverage/:symbol", summary: "Get your leverage on a perpetual", access: userRead, account: "accountId",
			params: map[string]string{"symbol": "instrumentId"}, query: map[string]string{"accountId": "accountId"},
			endpoint: unary(s.Orders.GetLeverage)},
		{method: http.MethodPut, path: "/v1/leverage/:symbol", summary: "Set your leverage on a perpetual", access: userTrade, body: true,
			account: "accountId", params: map[string]string{"symbol": "instrumentId"}, endpoint: unary(s.Orders.SetLeverage)},
		// Balances.
		{method: http.MethodGet, path: "/v1/balances", summary: "List balances", access: userRead, account: "accountId",
			query:    withPage(map[string]string{"accountId": "accountId", "asset": "assets", "includeZero": "includeZero"}),
			endpoint: unary(s.Wallet.ListBalances)},
		{method: http.MethodGet, path: "/v1/balances/:asset", summary: "Get one asset's balance", access: userRead, account: "accountId",
			params: map[string]string{"asset": "asset"}, query: map[string]string{"accountId": "accountId"},
			endpoint: unary(s.Wallet.GetBalance)},
		// Positions in perpetuals.
		{method: http.MethodGet, path: "/v1/positions", summary: "List your open positions in perpetuals", access: userRead, account: "accountId",
			query: map[string]string{"accountId": "accountId", "instrumentId": "instrumentIds"}, endpoint: unary(s.Wallet.GetPositions)},
		{method: http.MethodPost, path: "/v1/positions/:symbol/margin", summary: "Add margin to your position (amount above zero) or remove some", access: userTrade, body: true,
			account: "accountId", params: map[string]string{"symbol": "instrumentId"}, endpoint: unary(s.Orders.AdjustMargin)},
		// Instruments and market data.
		{method: http.MethodGet, path: "/v1/instruments", summary: "List instruments", access: public,
			query:    withPage(map[string]string{"kind": "kind", "status": "status", "baseAsset": "baseAsset", "quoteAsset": "quoteAsset"}),
			endpoint: unary(s.Metadata.ListInstruments)},
		{method: http.MethodGet, path: "/v1/instruments/:symbol", summary: "Get an instrument", access: public,
			params: map[string]string{"symbol": "symbol"}, endpoint: unary(s.Metadata.GetInstrument)},
		{method: http.MethodGet, path: "/v1/instruments/:symbol/book", summary: "Get the order book (L2)", access: public,
			params: map[string]string{"symbol": "instrumentId"}, query: map[string]string{"depth": "depth"},
			endpoint: unary(s.MarketData.GetBook)},
		{method: http.MethodGet, path: "/v1/instruments/:symbol/trades", summary: "List recent trades, newest first", access: public,
			params: map[string]string{"symbol": "instrumentId"}, query: map[string]string{"limit": "limit", "beforeSeq": "beforeSeq"},
			endpoint: unary(s.MarketData.ListTrades)},
		{method: http.MethodGet, path: "/v1/instruments/:symbol/ticker", summary: "Get the 24-hour ticker", access: public,
			params: map[string]string{"symbol": "instrumentId"}, endpoint: unary(s.MarketData.GetTicker)},
		{method: http.MethodGet, path: "/v1/instruments/:symbol/mark", summary: "Get a perpetual's mark price", access: public,
			params: map[string]string{"symbol": "instrumentId"}, endpoint: unary(s.MarketData.GetMarkPrice)},
		{method: http.MethodGet, path: "/v1/instruments/:symbol/candles", summary: "List candles, oldest first", access: public,
			params:  map[string]string{"symbol": "instrumentId"},
			query:   map[string]string{"interval": "interval", "startTime": "startTime", "endTime": "endTime", "limit": "limit"},
			aliases: map[string]map[string]string{"interval": candleIntervals}, endpoint: unary(s.MarketData.ListCandles)},
		{method: http.MethodGet, path: "/v1/tickers", summary: "List 24-hour tickers", access: public,
			query: map[string]string{"symbol": "instrumentIds"}, endpoint: unary(s.MarketData.ListTickers)},
		// Admin.
		{method: http.MethodPost, path: "/v1/admin/instruments", summary: "Create an instrument", access: adminOps, body: true,
			status: http.StatusCreated, endpoint: unary(s.Metadata.CreateInstrument)},
		{method: http.MethodPatch, path: "/v1/admin/instruments/:symbol", summary: "Change an instrument's trading rules", access: adminOps, body: true,
			params: map[string]string{"symbol": "symbol"}, endpoint: unary(s.Metadata.UpdateInstrument)},
		{method: http.MethodPost, path: "/v1/admin/instruments/:symbol/halt", summary: "Halt trading in an instrument", access: adminOps, body: true,
			params: map[string]string{"symbol": "symbol"}, endpoint: unary(s.Metadata.HaltInstrument)},
		{method: http.MethodPost, path: "/v1/admin/instruments/:symbol/resume", summary: "Resume trading in an instrument", access: adminOps, body: true,
			params: map[string]string{"symbol": "symbol"}, endpoint: unary(s.Metadata.ResumeInstrument)},
		{method: http.MethodPost, path: "/v1/admin/deposits", summary: "Credit an account", access: adminTransfer, body: true,
			idempotency: "transferId", endpoint: unary(s.Wallet.Deposit)},
		{method: http.MethodPost, path: "/v1/admin/withdrawals", summary: "Debit an account", access: adminTransfer, body: true,
			idempotency: "transferId", endpoint: unary(s.Wallet.Withdraw)},
		{method: http.MethodGet, path: "/v1/admin/users", summary: "List users, oldest first", access: adminRead,
			query: withPage(map[string]string{}), endpoint: unary(s.Auth.ListUsers)},
		{method: http.MethodPost, path: "/v1/admin/users/:userId/roles", summary: "Replace a user's roles", access: adminOps, body: true,
			params: map[string]string{"userId": "userId"}, endpoint: unary(s.Auth.SetUserRoles)},
		{method: http.MethodPost, path: "/v1/admin/users/:userId/disable", summary: "Disable a user", access: adminOps, body: true,
			params: map[string]string{"userId": "userId"}, endpoint: unary(s.Auth.DisableUser)},
		// Sign-in, API keys, profile.
		{method: http.MethodPost, path: "/v1/auth/register", summary: "Register (email and password)", access: public, body: true,
			status: http.StatusCreated, endpoint: unary(s.Auth.Register)},
		{method: http.MethodPost, path: "/v1/auth/login", summary: "Sign in: an access token and a refresh token", access: public, body: true,
			endpoint: unary(s.Auth.Login)},
		{method: http.MethodPost, path: "/v1/auth/refresh", summary: "Exchange a refresh token for new tokens", access: public, body: true,
			endpoint: unary(s.Auth.Refresh)},
		{method: http.MethodPost, path: "/v1/auth/logout", summary: "End a session (or all of the user's)", access: public, body: true,
			endpoint: unary(s.Auth.Logout)},
		{method: http.MethodGet, path: "/v1/api-keys", summary: "List your API keys", access: userRead, account: "userId",
			query: withPage(map[string]string{"userId": "userId", "includeRevoked": "includeRevoked"}), endpoint: unary(s.Auth.ListApiKeys)},
		{method: http.MethodPost, path: "/v1/api-keys", summary: "Create an API key (an HMAC secret is shown once)", access: userTrade,
			account: "userId", body: true, status: http.StatusCreated, endpoint: unary(s.Auth.CreateApiKey)},
		{method: http.MethodDelete, path: "/v1/api-keys/:keyId", summary: "Revoke an API key", access: keyOwner,
			params: map[string]string{"keyId": "apiKeyId"}, endpoint: unary(s.Auth.RevokeApiKey)},
		{method: http.MethodGet, path: "/v1/users/me", summary: "Your profile", access: userRead, account: "userId",
			query: map[string]string{"userId": "userId"}, endpoint: unary(s.User.GetProfile)},
		{method: http.MethodPatch, path: "/v1/users/me", summary: "Change your display name", access: userTrade, account: "userId",
			body: true, endpoint: unary(s.User.UpdateProfile)},
	}
}
