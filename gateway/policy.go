package gateway

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"connectrpc.com/connect"

	"github.com/tradex-mesh/tradex/gateway/auth"
)

// access says who may call a REST route or a Connect procedure: the one
// policy both paths enforce. A public call needs no credential; any other
// needs a credential with one of its roles and, for a request signed with
// an API key, the key's scope.
type access struct {
	// name says it in docs and errors: public, user, admin, service.
	name string
	// roles may call it; nil: anyone, without a credential.
	roles []string
	// scope is the API-key scope it needs.
	scope string
	// acts: it acts for an account, the caller's own (an admin's: any).
	acts bool
}

var (
	traderOrAdmin = []string{auth.RoleTrader, auth.RoleAdmin}

	// public calls need no credential (market data, instruments, sign-in).
	public = access{name: "public"}
	// userRead and userTrade act for the caller's account; an admin names
	// any account.
	userRead  = access{name: "user", roles: traderOrAdmin, scope: auth.ScopeRead, acts: true}
	userTrade = access{name: "user", roles: traderOrAdmin, scope: auth.ScopeTrade, acts: true}
	// keyOwner calls act on a thing the caller owns (an API key), which
	// the service checks.
	keyOwner = access{name: "user", roles: traderOrAdmin, scope: auth.ScopeTrade}
	// adminOps change the market (instruments, configuration, roles);
	// adminTransfer moves money in and out (deposits, withdrawals).
	adminOps      = access{name: "admin", roles: []string{auth.RoleAdmin}, scope: auth.ScopeTrade}
	adminRead     = access{name: "admin", roles: []string{auth.RoleAdmin}, scope: auth.ScopeRead}
	adminTransfer = access{name: "admin", roles: []string{auth.RoleAdmin}, scope: auth.ScopeTransfer}
	// service calls are the platform's own (the gateway verifying keys,
	// the order service holding funds), for service accounts and admins.
	service = access{name: "service", roles: []string{auth.RoleService, auth.RoleAdmin}, scope: auth.ScopeTrade}
	// denied is what a route or procedure nobody listed gets.
	denied = access{name: "denied", roles: []string{}}
)

// isPublic reports whether the call needs no credential.
func (a access) isPublic() bool { return a.roles == nil }

// errNoCredential is a call that needs a credential and came without one.
var errNoCredential = connect.NewError(connect.CodeUnauthenticated,
	errors.New("a credential is needed: Authorization: Bearer <access token>, or a request signed with an API key (X-TX-APIKEY)"))

// permit checks a principal (nil: none) against a call's access.
func permit(p *principal, a access) error {
	switch {
	case a.isPublic():
		return nil
	case p == nil:
		return errNoCredential
	case len(a.roles) == 0:
		return connect.NewError(connect.CodePermissionDenied, errors.New("this call is not open to anyone through the gateway"))
	case !slices.ContainsFunc(a.roles, p.HasRole):
		return connect.NewError(connect.CodePermissionDenied,
			fmt.Errorf("%s may not make this call: it needs the role %s", p.Subject, strings.Join(a.roles, " or ")))
	case !p.Allows(a.scope):
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("the API key lacks the %s scope this call needs", a.scope))
	}
	return nil
}

// Rule is one entry of the gateway's access policy, for docs and tests.
type Rule struct {
	// Method and Path name a REST route (Path in Fiber syntax:
	// /v1/orders/:orderId); Procedure a Connect procedure. One of the two.
	Method, Path, Procedure string
	// Public: no credential is needed.
	Public bool
	// Roles may make the call (empty for a public one).
	Roles []string
	// Scope is the API-key scope the call needs.
	Scope string
	// Account names the request field that says which account the call
	// acts for (REST: "accountId" or "userId"; Connect: "account_id" or
	// "user_id"); "" for a call that acts for none.
	Account string
}

// Policy lists every REST route and Connect procedure with who may call
// it: the table both paths enforce.
func (g *Gateway) Policy() []Rule {
	var out []Rule
	for _, rt := range g.restRoutes() {
		r := Rule{Method: rt.method, Path: rt.path, Public: rt.access.isPublic(), Roles: slices.Clone(rt.access.roles), Scope: rt.access.scope}
		if rt.access.acts {
			r.Account = rt.account
		}
		out = append(out, r)
	}
	for _, proc := range slices.Sorted(maps.Keys(procedureAccess)) {
		a := procedureAccess[proc]
		r := Rule{Procedure: proc, Public: a.isPublic(), Roles: slices.Clone(a.roles), Scope: a.scope}
		if a.acts {
			r.Account = accountFieldOf(proc)
		}
		out = append(out, r)
	}
	return out
}

// accountFieldOf is the field of a procedure's request that names its
// account: account_id, or user_id in the auth and user contracts.
func accountFieldOf(procedure string) string {
	if strings.HasPrefix(procedure, "/tradex.auth.") || strings.HasPrefix(procedure, "/tradex.user.") {
		return "user_id"
	}
	return "account_id"
}
