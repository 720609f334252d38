package auth

import (
	"context"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// The events of a user change.
const (
	eventRegistered = "registered"
	eventUpdated    = "updated"
	eventDisabled   = "disabled"
)

// EventID is the message id of the event of a user's change at revision:
// "user:u0123456789abcdef:2".
func EventID(userID string, revision uint64) string {
	return "user:" + userID + ":" + strconv.FormatUint(revision, 10)
}

// userEvent is u's latest change as an auth.user.v1 event.
func userEvent(u User) *authv1.UserEvent {
	ev := &authv1.UserEvent{EventId: EventID(u.ID, u.Revision), UserId: u.ID, OccurredAt: timestamppb.New(u.Updated)}
	pu := userToProto(u)
	switch u.Event {
	case eventRegistered:
		ev.Event = &authv1.UserEvent_Registered{Registered: &authv1.UserRegistered{User: pu, DisplayName: u.DisplayName}}
	case eventDisabled:
		ev.Event = &authv1.UserEvent_Disabled{Disabled: &authv1.UserDisabled{User: pu, Reason: u.DisabledReason}}
	default:
		ev.Event = &authv1.UserEvent_Updated{Updated: &authv1.UserUpdated{User: pu, ChangedFields: &fieldmaskpb.FieldMask{Paths: u.Changed}}}
	}
	return ev
}

// publish publishes u's latest event and records it published. The
// caller holds the user's lock.
func (s *Service) publish(ctx context.Context, u User) (User, error) {
	if _, err := s.pub.Publish(ctx, streams.TopicUserEvent, u.ID, userEvent(u), streams.WithMsgID(EventID(u.ID, u.Revision))); err != nil {
		return u, fmt.Errorf("publish user %s event %d: %w", u.ID, u.Revision, err)
	}
	rev := u.Revision
	return change(ctx, s.st, "user."+u.ID, func(x *User) error {
		if x.Published >= rev {
			return errUnchanged
		}
		x.Published = rev
		return nil
	})
}

// republish publishes the events a crash or a broker outage left
// unpublished.
func (s *Service) republish(ctx context.Context) error {
	users, err := all[User](ctx, s.st, "user.")
	if err != nil {
		return fmt.Errorf("read users: %w", err)
	}
	for _, u := range users {
		if u.Published >= u.Revision {
			continue
		}
		unlock := s.lockUser(u.ID)
		_, err := s.publish(ctx, u)
		unlock()
		if err != nil {
			return err
		}
		s.log.InfoContext(ctx, "user event republished", "user", u.ID, "revision", u.Revision)
	}
	return nil
}

// roleProto maps role names to the contract's enum.
var roleProto = map[string]authv1.Role{
	RoleTrader: authv1.Role_ROLE_TRADER, RoleAdmin: authv1.Role_ROLE_ADMIN, RoleService: authv1.Role_ROLE_SERVICE,
}

// RoleNames maps the contract's roles to the names the service keeps
// ("trader", "admin", "service"); an unknown role is left out.
func RoleNames(roles []authv1.Role) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		for name, pr := range roleProto {
			if pr == r {
				out = append(out, name)
			}
		}
	}
	return out
}

// RolesToProto maps role names to the contract's roles.
func RolesToProto(roles []string) []authv1.Role { return rolesToProto(roles) }

func rolesToProto(roles []string) []authv1.Role {
	out := make([]authv1.Role, 0, len(roles))
	for _, r := range roles {
		out = append(out, roleProto[r])
	}
	return out
}

func userToProto(u User) *authv1.User {
	status := authv1.UserStatus_USER_STATUS_ACTIVE
	if u.Disabled {
		status = authv1.UserStatus_USER_STATUS_DISABLED
	}
	return &authv1.User{UserId: u.ID, Email: u.Email, Roles: rolesToProto(u.Roles), Status: status,
		CreatedAt: timestamppb.New(u.Created), UpdatedAt: timestamppb.New(u.Updated)}
}

// UserOf is the user an auth.user.v1 event carries (every event carries
// the whole user), or nil for an event without a change.
func UserOf(ev *authv1.UserEvent) *authv1.User {
	switch e := ev.GetEvent().(type) {
	case *authv1.UserEvent_Registered:
		return e.Registered.GetUser()
	case *authv1.UserEvent_Updated:
		return e.Updated.GetUser()
	case *authv1.UserEvent_Disabled:
		return e.Disabled.GetUser()
	}
	return nil
}
