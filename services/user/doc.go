// Package user is the user service (tradex.user.v1.UserService): the
// profiles of the platform's users.
//
// A profile is built from the auth service's events on auth.user.v1 (the
// seed's Auth -> User link): UserRegistered creates it with the display
// name given at registration, UserUpdated copies the email and roles,
// UserDisabled marks it disabled. Events are applied once each, in order
// per user (their ids carry the user's revision, and a profile remembers
// the last one applied). The display name belongs to the user:
// UpdateProfile changes it and events leave it alone.
//
// Profiles live in the KV store Config.Bucket; the consumer is durable, so
// a restart picks up where it stopped.
package user
