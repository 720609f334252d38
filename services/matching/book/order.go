package book

// order is a resting order: a node of its level's FIFO queue. Nodes are pooled by the
// book and reused once the order leaves the book.
type order struct {
	id        string // the caller's string, kept as is
	account   string
	price     int64
	quantity  int64 // as submitted
	remaining int64
	seq       uint64 // arrival number: FIFO within a level is ascending seq
	prev      *order
	next      *order
	lvl       *level
	side      Side
	postOnly  bool
}

// poolChunk is how many order nodes the pool allocates at once when it runs dry.
const poolChunk = 256

// orderPool is a free list of order nodes.
type orderPool struct {
	free *order
}

// get returns a cleared node.
func (p *orderPool) get() *order {
	if p.free == nil {
		p.grow(poolChunk)
	}
	o := p.free
	p.free = o.next
	o.next = nil
	return o
}

// put clears o (dropping its strings) and returns it to the pool.
func (p *orderPool) put(o *order) {
	*o = order{next: p.free}
	p.free = o
}

// grow adds n nodes, allocated as one block.
func (p *orderPool) grow(n int) {
	block := make([]order, n)
	for i := range block {
		block[i].next = p.free
		p.free = &block[i]
	}
}
