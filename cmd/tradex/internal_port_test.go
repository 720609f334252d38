package main

import (
	"net"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1/walletv1connect"
)

// The internal port listens on loopback unless told otherwise, and credits
// nobody without the service credential (unless --internal-insecure).
func TestInternalPortIsPrivate(t *testing.T) {
	t.Parallel()
	if host, _, err := net.SplitHostPort(defaultServeConfig().GRPCAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("default --grpc-addr %q is not a loopback address", defaultServeConfig().GRPCAddr)
	}
	deposit := &walletv1.DepositRequest{TransferId: "free-money", AccountId: "mallory", Asset: "USDT", Amount: "1000000"}

	ep, _ := startServe(t, testServeConfig(t))
	anonymous := walletv1connect.NewWalletServiceClient(http.DefaultClient, "http://"+ep.GRPC)
	if _, err := anonymous.Deposit(t.Context(), deposit); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("Deposit without a credential: %v, want Unauthenticated", err)
	}
	service := walletv1connect.NewWalletServiceClient(internalClient(), "http://"+ep.GRPC)
	bal, err := service.GetBalance(t.Context(), &walletv1.GetBalanceRequest{AccountId: "mallory", Asset: "USDT"})
	if err != nil || bal.GetBalance().GetAvailable() != "0.00000000" {
		t.Fatalf("mallory's balance after the refused deposit: %v, %v", bal, err)
	}

	insecure := testServeConfig(t)
	insecure.InternalInsecure = true
	ep, _ = startServe(t, insecure)
	if _, err := walletv1connect.NewWalletServiceClient(http.DefaultClient, "http://"+ep.GRPC).Deposit(t.Context(), deposit); err != nil {
		t.Fatalf("--internal-insecure: Deposit without a credential: %v", err)
	}
}
