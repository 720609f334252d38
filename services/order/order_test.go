package order

import (
	"testing"
	"time"
)

func TestOrderAppliesEachEngineSequenceOnce(t *testing.T) {
	t.Parallel()
	at := time.Unix(1, 0)
	o := Order{Quantity: 10, Remaining: 10, Status: StatusNew, Revision: 1}
	steps := []struct {
		name string
		do   func() bool
		want bool
	}{
		{"accept", func() bool { return o.Accept(1, at) }, true},
		{"fill 4 at 3", func() bool { return o.Fill(2, at, 4, 12, 6) }, true},
		{"fill repeated", func() bool { return o.Fill(2, at, 4, 12, 6) }, false},
		{"older event", func() bool { return o.Cancel(1, at, 1) }, false},
		{"fill 6 at 4", func() bool { return o.Fill(5, at, 6, 24, 0) }, true},
	}
	for _, s := range steps {
		if got := s.do(); got != s.want {
			t.Fatalf("%s: applied %v, want %v", s.name, got, s.want)
		}
	}
	if o.Status != StatusFilled || o.Filled != 10 || o.Remaining != 0 || o.Revision != 4 || o.EngineSequence != 5 {
		t.Fatalf("order %+v", o)
	}
	if p, ok := o.AveragePrice(); !ok || p != 4 { // 36/10 = 3.6, half up
		t.Fatalf("average %d %v, want 4", p, ok)
	}
}

func TestAveragePrice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		filled, notional, want int64
		ok                     bool
	}{
		{0, 0, 0, false},
		{4, 10, 3, true}, // 2.5 rounds up
		{3, 10, 3, true}, // 3.33
		{3, 11, 4, true}, // 3.67
	}
	for _, c := range cases {
		got, ok := Order{Filled: c.filled, FilledNotional: c.notional}.AveragePrice()
		if got != c.want || ok != c.ok {
			t.Errorf("AveragePrice(%d/%d) = %d %v, want %d %v", c.notional, c.filled, got, ok, c.want, c.ok)
		}
	}
}

func TestStatusFinal(t *testing.T) {
	t.Parallel()
	for s, want := range map[Status]bool{StatusNew: false, StatusPartiallyFilled: false, StatusFilled: true,
		StatusCancelled: true, StatusRejected: true, StatusExpired: true} {
		if s.Final() != want {
			t.Errorf("%d.Final() = %v", s, !want)
		}
	}
}
