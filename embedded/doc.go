// Package embedded runs a nats-server with JetStream inside the current
// process, for tests and for single-binary edge deployments.
//
// [Start] starts one node and returns once it accepts connections and
// JetStream is ready; [StartCluster] starts a JetStream cluster of several
// nodes on loopback and returns once every node knows the meta leader.
//
// Durability: by default every write is fsynced before it is acknowledged
// ([SyncAlways], JetStream's `sync_interval: always`). JetStream's own default
// fsyncs every two minutes, which loses acknowledged writes on power loss
// (Jepsen, NATS 2.12.1, December 2025); choose [SyncPeriodic] only where that
// is acceptable.
//
// A server started with [NoListener] opens no TCP port at all: clients reach
// it through [Server.Connect] or [Server.InProcessOption].
//
// The package embeddedtest builds on this one for tests: a server per test
// with cleanup registered on testing.TB.
package embedded
