package streams

// HoldGroupCommit makes g wait for release before each write, so that a
// test can queue callers into one batch.
func HoldGroupCommit(g *GroupCommit, release <-chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.beforeWrite = func() { <-release }
}

// Queued is how many callers wait in g's queue.
func Queued(g *GroupCommit) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.queue)
}
