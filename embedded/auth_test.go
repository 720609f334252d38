package embedded_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tradex-mesh/tradex/embedded"
)

// With users, every connection authenticates, in process as over TCP, and
// a user publishes only where its permissions allow.
func TestUsersAreRequiredAndConfined(t *testing.T) {
	t.Parallel()
	srv, err := embedded.Start(t.Context(), embedded.Options{StoreDir: t.TempDir(), Port: 0, Users: []embedded.User{
		{Name: "admin", Password: "admin-secret"},
		{Name: "writer", Password: "writer-secret", Publish: []string{"allowed.>", "$JS.API.>"}, Subscribe: []string{"_INBOX.>"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // t.Context is cancelled by now: shut down with a context of its own
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})

	// An attacker on the host reaches the TCP listener. (In-process
	// connections are held to the same users; a refused one is only
	// noticed at nats.go's connect timeout, so it is not tried here.)
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo("writer", "wrong")}} {
		if nc, err := nats.Connect(srv.ClientURL(), opts...); err == nil {
			nc.Close()
			t.Errorf("connected with %d options and no valid credentials", len(opts))
		} else if !errors.Is(err, nats.ErrAuthorization) {
			t.Errorf("refused with %v, want an authorization violation", err)
		}
	}

	admin, err := srv.Connect(nats.UserInfo("admin", "admin-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	ajs, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ajs.CreateStream(t.Context(), jetstream.StreamConfig{Name: "ALL", Subjects: []string{"allowed.>", "denied.>"}})
	if err != nil {
		t.Fatal(err)
	}

	writer, err := srv.Connect(nats.UserInfo("writer", "writer-secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(writer.Close)
	wjs, err := jetstream.New(writer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wjs.Publish(t.Context(), "allowed.x", []byte("ok")); err != nil {
		t.Fatalf("allowed publish: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := wjs.Publish(ctx, "denied.x", []byte("forged")); err == nil {
		t.Fatal("a publish outside the user's permissions was acknowledged")
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want only the allowed one", info.State.Msgs)
	}
}
