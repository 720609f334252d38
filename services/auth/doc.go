// Package auth is the auth service (tradex.auth.v1.AuthService): user
// accounts and their credentials.
//
//   - Users register with an email and a password (argon2id, package
//     password) and get the trader role; a user's id is their trading
//     account id. Admins set roles and disable users.
//   - Login returns a short-lived access token (an EdDSA JWT, package token)
//     and an opaque refresh token. Refresh tokens are stored hashed, rotated
//     on every use, and a rotated one used again revokes its whole login
//     (its family): whoever stole it and whoever holds the current one are
//     both signed out.
//   - API keys sign requests (package signature): HMAC keys, whose secret is
//     shown once and kept encrypted with the master key, and Ed25519 keys,
//     of which the service holds only the public half. Keys have scopes,
//     an optional IP allow-list and an expiry.
//   - The signing keys of access tokens live encrypted in the bucket; their
//     public halves are the JWKS (GetSigningKeys, /.well-known/jwks.json).
//     Rotation adds a key and keeps the old one published until every token
//     it signed has expired.
//
// State is the KV bucket Config.Bucket (users, email index, sessions, API
// keys, signing keys) and the auth.user.v1 stream, whose UserRegistered,
// UserUpdated and UserDisabled events the user service builds profiles
// from. An event whose publish failed is published again at start and by
// the next change of its user (its message id makes it once only).
package auth
