package user

import (
	"context"
	"fmt"

	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	"github.com/tradex-mesh/tradex/services/auth"
	"github.com/tradex-mesh/tradex/streams"
)

// apply applies one auth.user.v1 event to its user's profile, once: an
// event at or before the profile's last applied revision is skipped.
func (s *Service) apply(ctx context.Context, m *streams.Message[*authv1.UserEvent]) error {
	ev := m.Payload
	rev, err := eventRevision(ev.GetEventId(), ev.GetUserId())
	if err != nil {
		return streams.Permanent(err)
	}
	u := auth.UserOf(ev)
	if u == nil {
		return streams.Permanent(fmt.Errorf("user event %s carries no change", ev.GetEventId()))
	}
	if u.GetUserId() != ev.GetUserId() {
		return streams.Permanent(fmt.Errorf("user event %s is about user %s", ev.GetEventId(), u.GetUserId()))
	}
	_, err = s.update(ctx, ev.GetUserId(), true, func(p *Profile) error {
		if p.Applied >= rev {
			return errUnchanged
		}
		p.Email, p.Disabled, p.Applied = u.GetEmail(), u.GetStatus() == authv1.UserStatus_USER_STATUS_DISABLED, rev
		p.Roles = auth.RoleNames(u.GetRoles())
		if reg := ev.GetRegistered(); reg != nil {
			p.DisplayName = reg.GetDisplayName()
		}
		if p.Created.IsZero() {
			p.Created = u.GetCreatedAt().AsTime()
		}
		p.Updated = ev.GetOccurredAt().AsTime()
		return nil
	})
	return err
}
