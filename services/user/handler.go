package user

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/timestamppb"

	gwauth "github.com/tradex-mesh/tradex/gateway/auth"
	authv1 "github.com/tradex-mesh/tradex/gen/go/tradex/auth/v1"
	userv1 "github.com/tradex-mesh/tradex/gen/go/tradex/user/v1"
	"github.com/tradex-mesh/tradex/services/auth"
)

// handler is the Connect handler.
type handler struct{ s *Service }

func (h *handler) fail(ctx context.Context, err error) error {
	return errorMap.ToConnect(ctx, h.s.log, err)
}

// forUser is the user a call about userID acts for: the caller's own when
// empty, another's only for an admin or a trusted caller (no principal).
func forUser(ctx context.Context, userID string) (string, error) {
	p, ok := gwauth.FromContext(ctx)
	switch {
	case !ok || p.Admin:
		if userID == "" {
			return "", invalid("user_id", "is required")
		}
		return userID, nil
	case userID == "":
		return p.AccountID, nil
	case userID != p.AccountID:
		return "", fmt.Errorf("%w: user_id: may not read or change user %s", ErrPermissionDenied, userID)
	}
	return userID, nil
}

// GetProfile returns the caller's profile (admins: anyone's).
func (h *handler) GetProfile(ctx context.Context, req *userv1.GetProfileRequest) (*userv1.GetProfileResponse, error) {
	id, err := forUser(ctx, req.GetUserId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	p, _, err := h.s.profile(ctx, id)
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &userv1.GetProfileResponse{Profile: profileToProto(p)}, nil
}

// UpdateProfile changes the caller's display name (admins: anyone's).
func (h *handler) UpdateProfile(ctx context.Context, req *userv1.UpdateProfileRequest) (*userv1.UpdateProfileResponse, error) {
	id, err := forUser(ctx, req.GetUserId())
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	if req.DisplayName != nil {
		if err := checkDisplayName(req.GetDisplayName()); err != nil {
			return nil, h.fail(ctx, err)
		}
	}
	p, err := h.s.update(ctx, id, false, func(p *Profile) error {
		if req.DisplayName == nil || p.DisplayName == req.GetDisplayName() {
			return errUnchanged
		}
		p.DisplayName, p.Updated = req.GetDisplayName(), h.s.now()
		return nil
	})
	if err != nil {
		return nil, h.fail(ctx, err)
	}
	return &userv1.UpdateProfileResponse{Profile: profileToProto(p)}, nil
}

func profileToProto(p Profile) *userv1.UserProfile {
	out := &userv1.UserProfile{UserId: p.UserID, Email: p.Email, DisplayName: p.DisplayName,
		Status: authv1.UserStatus_USER_STATUS_ACTIVE, CreatedAt: timestamppb.New(p.Created), UpdatedAt: timestamppb.New(p.Updated)}
	if p.Disabled {
		out.Status = authv1.UserStatus_USER_STATUS_DISABLED
	}
	out.Roles = auth.RolesToProto(p.Roles)
	return out
}
