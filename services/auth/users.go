package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/tradex-mesh/tradex/services/auth/password"
	"github.com/tradex-mesh/tradex/services/auth/token"
)

// errBadLogin is the one answer to a login that fails, whatever failed.
var errBadLogin = fmt.Errorf("%w: invalid email or password", ErrUnauthenticated)

func hashPassword(pw string, cfg Config) (string, error) { return password.Hash(pw, cfg.Password) }

// Tokens are what a login or a refresh returns.
type Tokens struct {
	Access         string
	AccessExpires  time.Time
	Refresh        string
	RefreshExpires time.Time
}

// DisplayNameRule says what a display name may be (the user service
// checks its changes by the same rule).
const DisplayNameRule = "must be at most 64 printable characters"

// ValidDisplayName reports whether name follows DisplayNameRule.
func ValidDisplayName(name string) bool {
	return len(name) <= 64 && strings.IndexFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }) < 0
}

// checkDisplayName applies DisplayNameRule.
func checkDisplayName(name string) error {
	if !ValidDisplayName(name) {
		return invalid("display_name", DisplayNameRule)
	}
	return nil
}

// Register creates a user with the given roles (the trader role when
// none) and publishes UserRegistered.
func (s *Service) Register(ctx context.Context, email, pw, displayName string, roles ...string) (User, error) {
	if err := s.opened(); err != nil {
		return User{}, err
	}
	e, err := normalizeEmail(email)
	if err != nil {
		return User{}, err
	}
	if err := password.CheckPolicy(pw, e); err != nil {
		return User{}, invalid("password", err.Error())
	}
	if err := checkDisplayName(displayName); err != nil {
		return User{}, err
	}
	if len(roles) == 0 {
		roles = []string{RoleTrader}
	}
	id, err := newID("u", 8)
	if err != nil {
		return User{}, err
	}
	hash, err := hashPassword(pw, s.cfg)
	if err != nil {
		return User{}, err
	}
	if err := s.st.create(ctx, emailKey(e), emailIndex{UserID: id}); err != nil {
		if errors.Is(err, ErrAlreadyExists) {
			return User{}, fmt.Errorf("%w: email is registered already", ErrAlreadyExists)
		}
		return User{}, err
	}
	now := s.now()
	u := User{ID: id, Email: e, DisplayName: displayName, PasswordHash: hash, Roles: roles,
		Created: now, Updated: now, Revision: 1, Event: eventRegistered}
	unlock := s.lockUser(id)
	defer unlock()
	if err := s.st.create(ctx, "user."+id, u); err != nil {
		return User{}, err // the email stays taken: a retry says AlreadyExists, an operator can free it
	}
	return s.publish(ctx, u)
}

// emailIndex maps an email to its user.
type emailIndex struct {
	UserID string `json:"user_id"`
}

// user reads a user.
func (s *Service) user(ctx context.Context, id string) (User, error) {
	var u User
	if _, err := s.st.get(ctx, "user."+id, &u); err != nil {
		if errors.Is(err, ErrNotFound) {
			return User{}, fmt.Errorf("%w: user %s", ErrNotFound, id)
		}
		return User{}, err
	}
	return u, nil
}

// userByEmail reads the user of a normalized email.
func (s *Service) userByEmail(ctx context.Context, email string) (User, error) {
	var idx emailIndex
	if _, err := s.st.get(ctx, emailKey(email), &idx); err != nil {
		return User{}, err
	}
	return s.user(ctx, idx.UserID)
}

// Login checks an email and password from the client address ip and
// starts a session. Every failure is the same Unauthenticated, and takes
// as long; an address that failed too often is throttled.
func (s *Service) Login(ctx context.Context, ip, email, pw string) (Tokens, User, error) {
	if err := s.opened(); err != nil {
		return Tokens{}, User{}, err
	}
	now := s.now()
	e := strings.ToLower(strings.TrimSpace(email))
	if !s.throttle.allowed(now, ip, e) {
		return Tokens{}, User{}, fmt.Errorf("%w: retry in %s", ErrThrottled, s.cfg.LoginWindow)
	}
	if len(pw) > 4*password.MaxLength {
		pw = pw[:4*password.MaxLength] // bounds the hashing work; such a password cannot match
	}
	u, err := s.userByEmail(ctx, e)
	hash := u.PasswordHash
	switch {
	case errors.Is(err, ErrNotFound):
		hash = s.dummy
	case err != nil:
		return Tokens{}, User{}, err
	}
	ok, rehash, err := password.Check(pw, hash, s.cfg.Password)
	if err != nil || !ok || u.ID == "" || u.Disabled {
		s.throttle.failed(now, ip, e)
		return Tokens{}, User{}, errBadLogin
	}
	s.throttle.succeeded(ip, e)
	if rehash {
		s.rehash(ctx, u.ID, pw)
	}
	t, err := s.startSession(ctx, u)
	return t, u, err
}

// rehash stores the password hashed with the current parameters; a
// failure is logged (the old hash still works).
func (s *Service) rehash(ctx context.Context, id, pw string) {
	hash, err := hashPassword(pw, s.cfg)
	if err == nil {
		_, err = change(ctx, s.st, "user."+id, func(u *User) error { u.PasswordHash = hash; return nil })
	}
	if err != nil {
		s.log.WarnContext(ctx, "rehash password", "user", id, "err", err)
	}
}

// refreshPrefix starts every refresh token: rt_<session>.<secret>.
const refreshPrefix = "rt_"

func newSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// startSession creates a session for u and returns its first tokens.
func (s *Service) startSession(ctx context.Context, u User) (Tokens, error) {
	sid, err := newID("s", 12)
	if err != nil {
		return Tokens{}, err
	}
	secret, err := newSecret()
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	sess := Session{ID: sid, UserID: u.ID, SecretHash: hashSecret(secret), Created: now, Rotated: now, Expires: now.Add(s.cfg.RefreshTTL)}
	if err := s.st.create(ctx, sess.ref().key(), sess); err != nil {
		return Tokens{}, err
	}
	if err := s.pruneSessions(ctx, u.ID); err != nil {
		s.log.WarnContext(ctx, "prune sessions", "user", u.ID, "err", err)
	}
	return s.tokens(ctx, u, sess, secret)
}

// MaxSessionsPerUser bounds a user's live logins: a new one past it ends
// the oldest.
const MaxSessionsPerUser = 20

// sessionRef names a session: its user and its id.
type sessionRef struct{ user, id string }

func (r sessionRef) key() string { return "session." + r.user + "." + r.id }

func (x Session) ref() sessionRef { return sessionRef{user: x.UserID, id: x.ID} }

// pruneSessions deletes a user's ended sessions (revoked or expired) and
// ends the oldest live ones past MaxSessionsPerUser, so that logins do not
// pile up in the bucket.
func (s *Service) pruneSessions(ctx context.Context, userID string) error {
	sessions, err := all[Session](ctx, s.st, "session."+userID+".")
	if err != nil {
		return err
	}
	now := s.now()
	slices.SortFunc(sessions, func(a, b Session) int { return b.Created.Compare(a.Created) }) // newest first
	live := 0
	for _, x := range sessions {
		if !x.Revoked && now.Before(x.Expires) {
			if live++; live <= MaxSessionsPerUser {
				continue
			}
		}
		if err := s.st.b.Delete(ctx, x.ref().key(), 0); err != nil {
			return err
		}
	}
	return nil
}

// tokens issues an access token for u in sess, with the refresh token of
// secret.
func (s *Service) tokens(ctx context.Context, u User, sess Session, secret string) (Tokens, error) {
	k, err := s.keys(ctx)
	if err != nil {
		return Tokens{}, err
	}
	jti, err := newID("", 12)
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	exp := now.Add(s.cfg.AccessTTL)
	access, err := token.Sign(s.tokenConfig(), k.active, token.Claims{
		Subject: u.ID, Roles: slices.Clone(u.Roles), Session: sess.ID, ID: jti, IssuedAt: now, Expiry: exp,
	})
	if err != nil {
		return Tokens{}, err
	}
	return Tokens{Access: access, AccessExpires: exp, Refresh: refreshPrefix + sess.UserID + "." + sess.ID + "." + secret, RefreshExpires: sess.Expires}, nil
}

func (s *Service) tokenConfig() token.Config {
	return token.Config{Issuer: s.cfg.Issuer, Audience: s.cfg.Audience, Leeway: s.cfg.Leeway}
}

// parseRefresh splits a refresh token (rt_<user>.<session>.<secret>) into
// its session and secret.
func parseRefresh(raw string) (sessionRef, string, error) {
	rest, ok := strings.CutPrefix(raw, refreshPrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(raw) > 160 || len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" ||
		strings.ContainsAny(parts[0]+parts[1], "*> ") {
		return sessionRef{}, "", fmt.Errorf("%w: malformed refresh token", ErrUnauthenticated)
	}
	return sessionRef{user: parts[0], id: parts[1]}, parts[2], nil
}

// errReused is a rotated refresh token presented again.
var errReused = fmt.Errorf("%w: refresh token reused: its session is revoked", ErrUnauthenticated)

// Refresh exchanges a refresh token for new tokens. The token presented
// stops working; presenting a rotated one again revokes its session.
func (s *Service) Refresh(ctx context.Context, raw string) (Tokens, error) {
	if err := s.opened(); err != nil {
		return Tokens{}, err
	}
	ref, secret, err := parseRefresh(raw)
	if err != nil {
		return Tokens{}, err
	}
	next, err := newSecret()
	if err != nil {
		return Tokens{}, err
	}
	now := s.now()
	var outcome error
	sess, err := change(ctx, s.st, ref.key(), func(x *Session) error {
		outcome = nil
		switch {
		case x.Revoked:
			outcome = fmt.Errorf("%w: session revoked", ErrUnauthenticated)
			return errUnchanged
		case !now.Before(x.Expires):
			outcome = fmt.Errorf("%w: session expired", ErrUnauthenticated)
			return errUnchanged
		case hashSecret(secret) != x.SecretHash:
			x.Revoked, x.Reused, outcome = true, true, errReused
			return nil
		}
		x.SecretHash, x.Rotated, x.Expires = hashSecret(next), now, now.Add(s.cfg.RefreshTTL)
		return nil
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return Tokens{}, fmt.Errorf("%w: unknown session", ErrUnauthenticated)
	case err != nil:
		return Tokens{}, err
	case outcome != nil:
		return Tokens{}, outcome
	}
	u, err := s.user(ctx, sess.UserID)
	if err != nil {
		return Tokens{}, err
	}
	if u.Disabled {
		return Tokens{}, fmt.Errorf("%w: user disabled", ErrUnauthenticated)
	}
	return s.tokens(ctx, u, sess, next)
}

// Logout ends the session of a refresh token, or with all every session of
// its user. An unknown or ended session is no error.
func (s *Service) Logout(ctx context.Context, raw string, all bool) error {
	if err := s.opened(); err != nil {
		return err
	}
	ref, _, err := parseRefresh(raw)
	if err != nil {
		return err
	}
	sess, err := s.revokeSession(ctx, ref)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil || !all:
		return err
	}
	return s.revokeSessions(ctx, sess.UserID)
}

func (s *Service) revokeSession(ctx context.Context, ref sessionRef) (Session, error) {
	return change(ctx, s.st, ref.key(), func(x *Session) error {
		if x.Revoked {
			return errUnchanged
		}
		x.Revoked = true
		return nil
	})
}

// revokeSessions revokes every session of a user.
func (s *Service) revokeSessions(ctx context.Context, userID string) error {
	sessions, err := all[Session](ctx, s.st, "session."+userID+".")
	if err != nil {
		return err
	}
	for _, x := range sessions {
		if !x.Revoked {
			if _, err := s.revokeSession(ctx, x.ref()); err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
		}
	}
	return nil
}

// roleNames are the roles a user may have.
var roleNames = []string{RoleTrader, RoleAdmin, RoleService}

// SetRoles replaces a user's roles and publishes UserUpdated.
func (s *Service) SetRoles(ctx context.Context, id string, roles []string) (User, error) {
	if err := s.opened(); err != nil {
		return User{}, err
	}
	if len(roles) == 0 {
		return User{}, invalid("roles", "at least one role is required")
	}
	for _, r := range roles {
		if !slices.Contains(roleNames, r) {
			return User{}, invalid("roles", fmt.Sprintf("unknown role %q", r))
		}
	}
	roles = slices.Compact(slices.Sorted(slices.Values(roles)))
	return s.changeUser(ctx, id, func(u *User) (string, []string) {
		if slices.Equal(u.Roles, roles) {
			return "", nil
		}
		u.Roles = roles
		return eventUpdated, []string{"roles"}
	})
}

// Disable disables a user: logins, refreshes and API keys stop working,
// every session is revoked, and UserDisabled is published.
func (s *Service) Disable(ctx context.Context, id, reason string) (User, error) {
	if err := s.opened(); err != nil {
		return User{}, err
	}
	if len(reason) > 256 {
		return User{}, invalid("reason", "must be at most 256 characters")
	}
	u, err := s.changeUser(ctx, id, func(u *User) (string, []string) {
		if u.Disabled {
			return "", nil
		}
		u.Disabled, u.DisabledReason = true, reason
		return eventDisabled, nil
	})
	if err != nil {
		return User{}, err
	}
	return u, s.revokeSessions(ctx, id)
}

// changeUser applies fn to a user (fn returns the event of the change and
// its changed fields, or "" for no change), then publishes the event.
func (s *Service) changeUser(ctx context.Context, id string, fn func(u *User) (event string, fields []string)) (User, error) {
	unlock := s.lockUser(id)
	defer unlock()
	u, err := s.user(ctx, id)
	if err != nil {
		return User{}, err
	}
	if u.Published < u.Revision { // an earlier change's event is still due
		if u, err = s.publish(ctx, u); err != nil {
			return User{}, err
		}
	}
	u, err = change(ctx, s.st, "user."+id, func(x *User) error {
		ev, fields := fn(x)
		if ev == "" {
			return errUnchanged
		}
		x.Revision++
		x.Event, x.Changed, x.Updated = ev, fields, s.now()
		return nil
	})
	if err != nil || u.Published == u.Revision {
		return u, err
	}
	return s.publish(ctx, u)
}

// Users returns every user, oldest first.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	if err := s.opened(); err != nil {
		return nil, err
	}
	us, err := all[User](ctx, s.st, "user.")
	if err != nil {
		return nil, err
	}
	slices.SortFunc(us, func(a, b User) int { return a.Created.Compare(b.Created) })
	return us, nil
}
