// Package embeddedtest gives each test its own embedded nats-server with
// JetStream, connected and cleaned up, for this project's tests and for
// anyone embedding this project in their own.
//
//	func TestOrders(t *testing.T) {
//		s := embeddedtest.New(t)
//		_, err := s.JetStream().CreateStream(t.Context(), jetstream.StreamConfig{...})
//		...
//	}
//
// [New] starts one node, in process with no TCP listener unless
// [WithTCP] is given, storing in t.TempDir(). [NewCluster] starts a
// JetStream cluster. Both register t.Cleanup functions that close the
// connection and shut the servers down, and both fail the test with
// t.Fatal when the server cannot start, so call them from the test's
// goroutine.
package embeddedtest
