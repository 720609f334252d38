package gateway

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	marketdatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/marketdata/v1"
	metadatav1 "github.com/tradex-mesh/tradex/gen/go/tradex/metadata/v1"
	orderv1 "github.com/tradex-mesh/tradex/gen/go/tradex/order/v1"
	userv1 "github.com/tradex-mesh/tradex/gen/go/tradex/user/v1"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
)

// TestEveryProcedureHasAnAccessLevel fails when a contract gains an RPC
// that nobody decided the gateway's access for (it would be admin only),
// and when a user procedure's request cannot name the account it acts for.
func TestEveryProcedureHasAnAccessLevel(t *testing.T) {
	t.Parallel()
	files := []protoreflect.FileDescriptor{metadatav1.File_tradex_metadata_v1_metadata_proto,
		walletv1.File_tradex_wallet_v1_wallet_proto, orderv1.File_tradex_order_v1_order_proto,
		marketdatav1.File_tradex_marketdata_v1_marketdata_proto, authv1.File_tradex_auth_v1_auth_proto,
		userv1.File_tradex_user_v1_user_proto}
	seen := 0
	for _, f := range files {
		for i := range f.Services().Len() {
			svc := f.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				proc := "/" + string(svc.FullName()) + "/" + string(m.Name())
				a, ok := procedureAccess[proc]
				if !ok {
					t.Errorf("%s has no access level", proc)
					continue
				}
				seen++
				if in := m.Input().Fields(); a.acts && in.ByName("account_id") == nil && in.ByName("user_id") == nil {
					t.Errorf("%s acts for an account but its request has no account_id or user_id", proc)
				}
			}
		}
	}
	if seen != len(procedureAccess) {
		t.Errorf("the table has %d procedures, the contracts %d", len(procedureAccess), seen)
	}
}
