package user

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tradex-mesh/tradex/services/auth"
)

// Profile is a user's profile as the service keeps it.
type Profile struct {
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name,omitempty"`
	Roles       []string  `json:"roles"`
	Disabled    bool      `json:"disabled,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Applied is the revision of the last auth event applied.
	Applied uint64 `json:"applied"`
}

// eventRevision reads the user's revision from an auth.user.v1 event id
// ("user:<id>:<revision>").
func eventRevision(eventID, userID string) (uint64, error) {
	rest, ok := strings.CutPrefix(eventID, "user:"+userID+":")
	if !ok {
		return 0, fmt.Errorf("event id %q is not one of user %s", eventID, userID)
	}
	rev, err := strconv.ParseUint(rest, 10, 64)
	if err != nil || rev == 0 {
		return 0, fmt.Errorf("event id %q has no revision", eventID)
	}
	return rev, nil
}

// checkDisplayName applies the auth service's rule for display names.
func checkDisplayName(name string) error {
	if !auth.ValidDisplayName(name) {
		return invalid("display_name", auth.DisplayNameRule)
	}
	return nil
}
