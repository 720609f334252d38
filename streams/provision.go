package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStreams creates or updates the stream of every catalog topic and
// of its dead-letter topic, idempotently, and waits until each has a leader.
// It refuses, with an error wrapping ErrStreamConflict, an existing stream
// whose configuration contradicts its profile (another storage type, limits
// that would discard financial records, delete allowed on a financial topic),
// and changes nothing else in that case.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, catalog *Catalog, opts ...ProvisionOption) error {
	prov, err := newProvisioning(opts)
	if err != nil {
		return err
	}
	type plan struct {
		want    jetstream.StreamConfig
		profile Profile
		exists  bool
	}
	var plans []plan
	var conflicts []string
	for _, t := range catalog.Topics() {
		for _, p := range []struct {
			topic   string
			profile Profile
		}{{t.Name, t.Profile}, {t.DLQ(), DeadLetter}} {
			want := prov.streamConfig(p.topic, p.profile)
			existing, err := streamConfig(ctx, js, want.Name)
			if err != nil {
				return err
			}
			if existing == nil {
				plans = append(plans, plan{want: want, profile: p.profile})
				continue
			}
			if c := contradictions(p.profile, *existing, want); len(c) > 0 {
				conflicts = append(conflicts, fmt.Sprintf("stream %s: %s", want.Name, strings.Join(c, "; ")))
				continue
			}
			if needsUpdate(*existing, want) {
				plans = append(plans, plan{want: mergeUpdate(*existing, want), profile: p.profile, exists: true})
			}
		}
	}
	if len(conflicts) > 0 {
		return fmt.Errorf("%w: %s", ErrStreamConflict, strings.Join(conflicts, "; "))
	}
	for _, p := range plans {
		op, apply := "create", js.CreateStream
		if p.exists {
			op, apply = "update", js.UpdateStream
		}
		if err := applyPlaced(ctx, func() error { _, err := apply(ctx, p.want); return err }); err != nil {
			return brokerError(fmt.Sprintf("%s stream %s", op, p.want.Name), err)
		}
	}
	for _, t := range catalog.Topics() {
		for _, name := range []string{t.Stream(), StreamName(t.DLQ())} {
			if err := waitForLeader(ctx, js, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// streamConfig returns the configuration of an existing stream, or nil.
func streamConfig(ctx context.Context, js jetstream.JetStream, name string) (*jetstream.StreamConfig, error) {
	s, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, brokerError("look up stream "+name, err)
	}
	cfg := s.CachedInfo().Config
	return &cfg, nil
}

// needsUpdate reports whether the settings EnsureStreams owns differ.
func needsUpdate(existing, want jetstream.StreamConfig) bool {
	return existing.Description != want.Description ||
		existing.Replicas != want.Replicas ||
		existing.Duplicates != want.Duplicates ||
		existing.AllowDirect != want.AllowDirect ||
		existing.AllowAtomicPublish != want.AllowAtomicPublish ||
		existing.AllowMsgTTL != want.AllowMsgTTL ||
		existing.MaxAge != want.MaxAge ||
		existing.DenyDelete != want.DenyDelete ||
		existing.DenyPurge != want.DenyPurge
}

// mergeUpdate applies the owned settings of want onto existing, keeping
// whatever else an operator set (placement, metadata, compression...).
func mergeUpdate(existing, want jetstream.StreamConfig) jetstream.StreamConfig {
	out := existing
	out.Description = want.Description
	out.Replicas = want.Replicas
	out.Duplicates = want.Duplicates
	out.AllowDirect = want.AllowDirect
	out.AllowAtomicPublish = want.AllowAtomicPublish
	out.AllowMsgTTL = want.AllowMsgTTL
	out.MaxAge = want.MaxAge
	out.DenyDelete = want.DenyDelete
	out.DenyPurge = want.DenyPurge
	return out
}

// leaderPoll is how often waitForLeader asks for stream info.
const leaderPoll = 25 * time.Millisecond

// waitForLeader waits until a (replicated) stream has an elected leader, so
// that the first publish does not time out while the election runs.
func waitForLeader(ctx context.Context, js jetstream.JetStream, name string) error {
	for {
		s, err := js.Stream(ctx, name)
		if err == nil {
			if ci := s.CachedInfo().Cluster; ci == nil || ci.Leader != "" {
				return nil
			}
		} else if !isUnavailable(err) && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return brokerError("stream "+name, err)
		}
		select {
		case <-ctx.Done():
			return brokerError("wait for a leader of stream "+name, ctx.Err())
		case <-time.After(leaderPoll):
		}
	}
}

// errCodeNoPeers is JetStream's "no suitable peers for placement"
// (JSClusterNoPeersErr), which nats.go has no constant for.
const errCodeNoPeers jetstream.ErrorCode = 10005

// placementWait bounds how long a stream change is retried: a cluster that
// has just started may not know all its peers yet, and a busy meta leader
// may answer after the request's timeout.
const placementWait = 30 * time.Second

// applyPlaced runs apply, retrying for up to placementWait while the cluster
// answers "no suitable peers for placement" (a peer not seen yet) or does
// not answer in time. Creating or updating a stream with the same
// configuration again is a no-op, so a request that was applied but whose
// answer was lost is safe to repeat.
func applyPlaced(ctx context.Context, apply func() error) error {
	deadline := time.Now().Add(placementWait)
	for attempt := 0; ; attempt++ {
		err := apply()
		if err == nil || !retryablePlacement(err) || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		if serr := sleep(ctx, backoff(attempt, 50*time.Millisecond, time.Second)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// retryablePlacement reports whether a stream create or update failed in a
// way a retry can fix: no peers to place it on yet, or no answer in time.
func retryablePlacement(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == errCodeNoPeers
	}
	return isUnavailable(err)
}
