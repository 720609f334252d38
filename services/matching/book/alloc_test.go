package book

import "testing"

// TestSteadyStateAllocatesNothing replays the benchmark's whole stream (262,144
// commands: places, cancels, crossing and market orders) on a warm book and requires
// exactly zero heap allocations. BenchmarkBook's allocs/op rounds down, so it cannot
// show a rare allocation (a map rehash, a pool refill); this test can.
//
// It is not parallel: testing.AllocsPerRun counts the allocations of the whole process.
func TestSteadyStateAllocatesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("generates 262,144 commands")
	}
	s := benchStreamOnce()
	b, err := Restore(s.warm, benchCapacity...)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Event, 0, 1024)
	i := 0
	avg := testing.AllocsPerRun(len(s.cmds)-1, func() {
		out = b.Apply(s.cmds[i], out[:0])
		i++
	})
	if avg != 0 {
		t.Errorf("%.6f allocations per command (%.0f in all)", avg, avg*float64(len(s.cmds)-1))
	}
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
}
