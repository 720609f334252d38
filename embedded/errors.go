package embedded

import "errors"

var (
	// ErrNoStoreDir is returned by [Start] and [StartCluster] when no store
	// directory is given: JetStream file storage needs one.
	ErrNoStoreDir = errors.New("store dir is required")

	// ErrStoreDir is returned when the store directory cannot be created or
	// written to. The error text names the directory.
	ErrStoreDir = errors.New("store dir not usable")

	// ErrAddrInUse is returned when a client or route address is already in
	// use by another listener. The error text names the address.
	ErrAddrInUse = errors.New("address already in use")

	// ErrClusterNoListener is returned for a cluster node without a client
	// listener: nats-server starts routing only once its client listener
	// is up, so such a node would never join its cluster.
	ErrClusterNoListener = errors.New("a cluster node needs a client listener")

	// ErrNotReady is returned when the server did not become ready within
	// the ready timeout.
	ErrNotReady = errors.New("server not ready")

	// ErrStoreKey is returned for unusable [Encryption] options (a short
	// key, an unknown cipher).
	ErrStoreKey = errors.New("store encryption key not usable")

	// ErrStoreEncrypted is returned when a store's encrypted streams cannot
	// be read: no key was given, or not the one they were written with.
	// The error text names the streams.
	ErrStoreEncrypted = errors.New("store is encrypted")

	// ErrStreamUnreadable is returned when a single node could not load a
	// stream stored on disk (damaged files): it would never become ready.
	// The error text names the streams.
	ErrStreamUnreadable = errors.New("stored stream could not be recovered")

	// ErrServerFailed is returned when nats-server reported a fatal error
	// while starting (the text of that error follows).
	ErrServerFailed = errors.New("nats-server failed")
)
