// Package health is how a service tells the composition root whether it
// can serve: the readiness probe (/readyz) and gRPC health are built from
// these statuses.
package health

// State is where a service is in its life.
type State string

// States a service reports.
const (
	// Starting: the service has not finished its first start (rebuilding
	// its state, opening its stores).
	Starting State = "starting"
	// Rebuilding: it was serving and is rebuilding its state again (after
	// a gap or a lost broker); it answers Unavailable meanwhile.
	Rebuilding State = "rebuilding"
	// Behind: it serves, but its consumers are far behind their streams.
	Behind State = "behind"
	// Ready: it serves.
	Ready State = "ready"
)

// Status is a service's readiness at one moment.
type Status struct {
	State State `json:"state"`
	// Detail says why it is not ready ("gap in engine.event.v1 at 1042;
	// rebuilding: 800 of 5000 events applied"); empty when ready.
	Detail string `json:"detail,omitempty"`
}

// OK reports whether the service can serve.
func (s Status) OK() bool { return s.State == Ready }

// Reporter is a service that reports its own status. Services that do not
// implement it are Starting until their Ready channel is closed, then Ready.
type Reporter interface {
	Health() Status
}
