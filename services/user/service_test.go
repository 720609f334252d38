package user_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	gwauth "github.com/tradex-mesh/tradex/gateway/auth"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	userv1 "github.com/tradex-mesh/tradex/gen/go/tradex/user/v1"
	"github.com/tradex-mesh/tradex/internal/polltest"
	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/services/auth/password"
	"github.com/tradex-mesh/tradex/services/user"
	"github.com/tradex-mesh/tradex/streams"
)

// run runs a service until the test ends and waits until it is ready.
func run(t *testing.T, name string, ready <-chan struct{}, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s ended: %v", name, err)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s not ready", name)
	}
}

// TestProfilesFollowTheAuthService: the Auth -> User link. A user
// registered with the auth service gets a profile by the event path; its
// role change and its disabling reach the profile; the display name is
// the user's to change.
func TestProfilesFollowTheAuthService(t *testing.T) {
	t.Parallel()
	s := embeddedtest.New(t)
	if err := streams.EnsureStreams(t.Context(), s.JetStream(), streams.DefaultCatalog()); err != nil {
		t.Fatal(err)
	}
	mesh := streams.NewClient(s.JetStream(), streams.DefaultCatalog())
	acfg := auth.Default()
	acfg.MasterKey = []byte("0123456789abcdef0123456789abcdef")
	acfg.Password = password.Params{Memory: 64, Time: 1, Threads: 1}
	as, err := auth.New(acfg, auth.Deps{Streams: mesh, Publisher: mesh.Publisher(streams.WithSource("tradex/auth"))})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "auth", as.Ready(), as.Run)
	us, err := user.New(user.Default(), user.Deps{Streams: mesh})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "user", us.Ready(), us.Run)

	u, err := as.Register(t.Context(), "kim@example.com", "correct horse battery", "Kim")
	if err != nil {
		t.Fatal(err)
	}
	h := us.InProcess()
	ctx := gwauth.NewContext(t.Context(), gwauth.Principal{Subject: u.ID, AccountID: u.ID})
	profile := func() *userv1.UserProfile {
		res, err := h.GetProfile(ctx, &userv1.GetProfileRequest{})
		if err != nil {
			return nil
		}
		return res.GetProfile()
	}
	polltest.True(t, "the profile to appear", func() bool { return profile() != nil })
	p := profile()
	if p.GetUserId() != u.ID || p.GetEmail() != "kim@example.com" || p.GetDisplayName() != "Kim" ||
		len(p.GetRoles()) != 1 || p.GetRoles()[0] != authv1.Role_ROLE_TRADER || p.GetStatus() != authv1.UserStatus_USER_STATUS_ACTIVE {
		t.Fatalf("profile %v", p)
	}

	up, err := h.UpdateProfile(ctx, &userv1.UpdateProfileRequest{DisplayName: proto.String("Kim K.")})
	if err != nil || up.GetProfile().GetDisplayName() != "Kim K." {
		t.Fatalf("UpdateProfile: %v, %v", up, err)
	}
	if _, err := as.SetRoles(t.Context(), u.ID, []string{auth.RoleTrader, auth.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	if _, err := as.Disable(t.Context(), u.ID, "closed"); err != nil {
		t.Fatal(err)
	}
	polltest.True(t, "the profile to show the roles and the disabling", func() bool {
		p := profile()
		return p.GetStatus() == authv1.UserStatus_USER_STATUS_DISABLED && len(p.GetRoles()) == 2
	})
	if p := profile(); p.GetDisplayName() != "Kim K." {
		t.Errorf("display name %q after auth events; the user's change must stay", p.GetDisplayName())
	}

	// Another user's profile: refused; a display name out of bounds: refused.
	other := gwauth.NewContext(t.Context(), gwauth.Principal{Subject: "u-other", AccountID: "u-other"})
	_, err = h.GetProfile(other, &userv1.GetProfileRequest{UserId: u.ID})
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("another's profile: %v", err)
	}
	_, err = h.UpdateProfile(ctx, &userv1.UpdateProfileRequest{DisplayName: proto.String("bad\nname")})
	if connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Errorf("a display name with a newline: %v", err)
	}
	_, err = h.GetProfile(gwauth.NewContext(t.Context(), gwauth.Principal{Subject: "nobody", AccountID: "nobody"}), &userv1.GetProfileRequest{})
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("a user without a profile: %v", err)
	}
}
