package order

import (
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nuid"
)

// idGenerator makes order ids: 16 hex digits of the creation time in
// nanoseconds (never going back within a process), then a nuid, so ids are
// unique across processes and sort by creation time as text.
type idGenerator struct {
	now  func() time.Time
	mu   sync.Mutex
	last int64
	nuid *nuid.NUID
}

func newIDGenerator(now func() time.Time) *idGenerator {
	return &idGenerator{now: now, nuid: nuid.New()}
}

func (g *idGenerator) next() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := max(g.now().UnixNano(), g.last+1)
	g.last = t
	return fmt.Sprintf("%016x%s", uint64(t), g.nuid.Next())
}
