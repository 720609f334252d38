package auth

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	gwauth "github.com/tradex-mesh/tradex/gateway/auth"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	commonv1 "github.com/tradex-mesh/tradex/gen/go/tradex/common/v1"
	"github.com/tradex-mesh/tradex/internal/paging"
)

// handler is the Connect handler: proto in, domain call, proto out, domain
// errors to Connect codes once (fail).
type handler struct{ s *Service }

func (h *handler) fail(ctx context.Context, err error) error {
	return errorMap.ToConnect(ctx, h.s.log, err)
}

// caller is who makes a call: the principal the gateway put in ctx, or,
// without one, a trusted caller on the internal port (as an admin).
type caller struct {
	userID  string
	admin   bool
	service bool // a service account: may verify API keys
}

func callerOf(ctx context.Context) caller {
	p, ok := gwauth.FromContext(ctx)
	if !ok {
		return caller{admin: true, service: true}
	}
	return caller{userID: p.AccountID, admin: p.Admin, service: p.HasRole(gwauth.RoleService)}
}

// forUser is the user a call about userID acts for: the caller's own when
// empty; another's only for an admin.
func (c caller) forUser(userID string) (string, error) {
	switch {
	case userID == "" && c.userID == "":
		return "", invalid("user_id", "is required")
	case userID == "":
		return c.userID, nil
	case userID != c.userID && !c.admin:
		return "", fmt.Errorf("%w: user_id: may not act for user %s", ErrPermissionDenied, userID)
	}
	return userID, nil
}

func (c caller) mustBeAdmin() error {
	if !c.admin {
		return fmt.Errorf("%w: admins only", ErrPermissionDenied)
	}
	return nil
}

func tokensToProto(t Tokens) *authv1.TokenPair {
	return &authv1.TokenPair{
		AccessToken: t.Access, TokenType: "Bearer", AccessTokenExpiresAt: timestamppb.New(t.AccessExpires),
		RefreshToken: t.Refresh, RefreshTokenExpiresAt: timestamppb.New(t.RefreshExpires),
	}
}

// Register creates a trader.
func (h *handler) Register(ctx context.Context, req *authv1.RegisterRequest) (*authv1.RegisterResponse, error) {
	u, err := h.s.Register(ctx, req.GetEmail(), req.GetPassword(), req.GetDisplayName())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.RegisterResponse{User: userToProto(u)}, nil
}

// Login signs a user in from the client address the gateway saw.
func (h *handler) Login(ctx context.Context, req *authv1.LoginRequest) (*authv1.LoginResponse, error) {
	ip := gwauth.ClientAddress(ctx)
	if ip == "" {
		ip = "internal"
	}
	t, u, err := h.s.Login(ctx, ip, req.GetEmail(), req.GetPassword())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.LoginResponse{Tokens: tokensToProto(t), User: userToProto(u)}, nil
}

// Refresh rotates a refresh token.
func (h *handler) Refresh(ctx context.Context, req *authv1.RefreshRequest) (*authv1.RefreshResponse, error) {
	t, err := h.s.Refresh(ctx, req.GetRefreshToken())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.RefreshResponse{Tokens: tokensToProto(t)}, nil
}

// Logout ends a session, or all of the user's.
func (h *handler) Logout(ctx context.Context, req *authv1.LogoutRequest) (*authv1.LogoutResponse, error) {
	if err := h.s.Logout(ctx, req.GetRefreshToken(), req.GetAllSessions()); err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.LogoutResponse{}, nil
}

// scopeNames maps the contract's scopes to the service's.
var scopeNames = map[authv1.ApiKeyScope]string{
	authv1.ApiKeyScope_API_KEY_SCOPE_READ: ScopeRead, authv1.ApiKeyScope_API_KEY_SCOPE_TRADE: ScopeTrade,
	authv1.ApiKeyScope_API_KEY_SCOPE_TRANSFER: ScopeTransfer,
}

// CreateApiKey creates a key for the caller (admins: for anyone).
func (h *handler) CreateApiKey(ctx context.Context, req *authv1.CreateApiKeyRequest) (*authv1.CreateApiKeyResponse, error) { //nolint:revive // the generated interface names it
	userID, err := callerOf(ctx).forUser(req.GetUserId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	nk := NewKey{UserID: userID, Name: req.GetName(), AllowedIPs: req.GetAllowedIps()}
	for _, sc := range req.GetScopes() {
		name, ok := scopeNames[sc]
		if !ok {
			return nil, h.fail(ctx, invalid("scopes", fmt.Sprintf("unknown scope %v", sc)))
		}
		nk.Scopes = append(nk.Scopes, name)
	}
	if req.GetExpiresAt() != nil {
		nk.Expires = req.GetExpiresAt().AsTime()
	}
	if pk := req.GetPublicKey(); pk != "" {
		if nk.PublicKey, err = DecodePublicKey(pk); err != nil {
			return nil, h.fail(ctx, err)
		}
	}
	k, secret, err := h.s.CreateKey(ctx, nk)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.CreateApiKeyResponse{ApiKey: keyToProto(k), Secret: secret}, nil
}

// ListApiKeys lists the caller's keys (admins: anyone's).
func (h *handler) ListApiKeys(ctx context.Context, req *authv1.ListApiKeysRequest) (*authv1.ListApiKeysResponse, error) { //nolint:revive // the generated interface names it
	userID, err := callerOf(ctx).forUser(req.GetUserId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	size, offset, err := paging.ReadOffset(req.GetPage(), "api-keys:"+userID, MaxKeysPerUser*64)
	if err != nil {
		return nil, h.fail(ctx, invalid(paging.Field(err), err.Error()))
	}
	keys, err := h.s.Keys(ctx, userID, req.GetIncludeRevoked())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	page, next := window(keys, size, offset)
	out := &authv1.ListApiKeysResponse{Page: &commonv1.PageResponse{}}
	for _, k := range page {
		out.ApiKeys = append(out.ApiKeys, keyToProto(k))
	}
	if next > 0 {
		out.Page.NextPageToken = paging.OffsetToken("api-keys:"+userID, next)
	}
	return out, nil
}

// window is the page of list at offset of at most size items, and the
// offset after it (0 at the end).
func window[T any](list []T, size, offset int) ([]T, int) {
	if offset >= len(list) {
		return nil, 0
	}
	end := min(offset+size, len(list))
	if end == len(list) {
		return list[offset:end], 0
	}
	return list[offset:end], end
}

// RevokeApiKey revokes one of the caller's keys (admins: anyone's).
func (h *handler) RevokeApiKey(ctx context.Context, req *authv1.RevokeApiKeyRequest) (*authv1.RevokeApiKeyResponse, error) { //nolint:revive // the generated interface names it
	c := callerOf(ctx)
	owner := c.userID
	if c.admin {
		owner = ""
	}
	k, err := h.s.RevokeKey(ctx, req.GetApiKeyId(), owner)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.RevokeApiKeyResponse{ApiKey: keyToProto(k)}, nil
}

// VerifyApiKey checks a signed request for the gateway (trusted callers only).
func (h *handler) VerifyApiKey(ctx context.Context, req *authv1.VerifyApiKeyRequest) (*authv1.VerifyApiKeyResponse, error) { //nolint:revive // the generated interface names it
	if c := callerOf(ctx); !c.admin && !c.service { // the gateway calls it in process or on the internal port
		return nil, h.fail(ctx, fmt.Errorf("%w: service accounts and admins only", ErrPermissionDenied))
	}
	k, u, err := h.s.VerifyRequest(ctx, req.GetApiKeyId(), req.GetMessage(), req.GetSignature(), req.GetClientIp())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.VerifyApiKeyResponse{ApiKey: keyToProto(k), User: userToProto(u)}, nil
}

// GetSigningKeys returns the JWKS.
func (h *handler) GetSigningKeys(ctx context.Context, _ *authv1.GetSigningKeysRequest) (*authv1.GetSigningKeysResponse, error) {
	jwks, err := h.s.JWKS(ctx)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.GetSigningKeysResponse{Jwks: jwks}, nil
}

// ListUsers lists users (admins).
func (h *handler) ListUsers(ctx context.Context, req *authv1.ListUsersRequest) (*authv1.ListUsersResponse, error) {
	if err := callerOf(ctx).mustBeAdmin(); err != nil {
		return nil, h.fail(ctx, err)
	}
	size, offset, err := paging.ReadOffset(req.GetPage(), "users", 1<<30)
	if err != nil {
		return nil, h.fail(ctx, invalid(paging.Field(err), err.Error()))
	}
	users, err := h.s.Users(ctx)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	page, next := window(users, size, offset)
	out := &authv1.ListUsersResponse{Page: &commonv1.PageResponse{}}
	for _, u := range page {
		out.Users = append(out.Users, userToProto(u))
	}
	if next > 0 {
		out.Page.NextPageToken = paging.OffsetToken("users", next)
	}
	return out, nil
}

// roleNamesOf maps the contract's roles to the service's, refusing an
// unknown one.
func roleNamesOf(roles []authv1.Role) ([]string, error) {
	names := RoleNames(roles)
	if len(names) != len(roles) {
		return nil, invalid("roles", fmt.Sprintf("unknown role in %v", roles))
	}
	return names, nil
}

// SetUserRoles replaces a user's roles (admins).
func (h *handler) SetUserRoles(ctx context.Context, req *authv1.SetUserRolesRequest) (*authv1.SetUserRolesResponse, error) {
	if err := callerOf(ctx).mustBeAdmin(); err != nil {
		return nil, h.fail(ctx, err)
	}
	roles, err := roleNamesOf(req.GetRoles())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	u, err := h.s.SetRoles(ctx, req.GetUserId(), roles)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.SetUserRolesResponse{User: userToProto(u)}, nil
}

// DisableUser disables a user (admins).
func (h *handler) DisableUser(ctx context.Context, req *authv1.DisableUserRequest) (*authv1.DisableUserResponse, error) {
	if err := callerOf(ctx).mustBeAdmin(); err != nil {
		return nil, h.fail(ctx, err)
	}
	u, err := h.s.Disable(ctx, req.GetUserId(), req.GetReason())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &authv1.DisableUserResponse{User: userToProto(u)}, nil
}

func keyToProto(k APIKey) *authv1.ApiKey {
	out := &authv1.ApiKey{ApiKeyId: k.ID, UserId: k.UserID, Name: k.Name, CreatedAt: timestamppb.New(k.Created),
		AllowedIps: k.AllowedIPs, Kind: authv1.ApiKeyKind_API_KEY_KIND_HMAC}
	if k.Kind == KindEd25519 {
		out.Kind = authv1.ApiKeyKind_API_KEY_KIND_ED25519
	}
	for _, sc := range k.Scopes {
		for p, name := range scopeNames {
			if name == sc {
				out.Scopes = append(out.Scopes, p)
			}
		}
	}
	if !k.Expires.IsZero() {
		out.ExpiresAt = timestamppb.New(k.Expires)
	}
	if !k.Revoked.IsZero() {
		out.RevokedAt = timestamppb.New(k.Revoked)
	}
	return out
}
