// Package platform is the composition root of TradeX: it builds the
// services by name from one Config, each on a NATS connection of its own
// (named "tradex-<service>" in the server's connection list), resolves what
// each depends on — in process when the dependency runs here, Connect over
// HTTP at Config.RemoteURL when it does not, whatever the order the
// services were listed in — gives every Connect handler the same
// interceptors (metrics, auth, panic recovery), and reports each service's
// readiness for /readyz and gRPC health.
//
// `tradex serve` and internal/platformtest both build on it; the test
// platform adds only killing and restarting a service.
//
//	p, _ := platform.New(platform.Default(), platform.Deps{Dial: broker.Dial})
//	err := p.Start(ctx)   // provisions the streams, starts every service
//	err = p.WaitReady(ctx) // every service has rebuilt its state
//	err = p.Wait(ctx)     // until ctx ends or a service fails
//	err = p.Stop(ctx)
package platform
