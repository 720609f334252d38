package streams_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/embedded/embeddedtest"
	walletv1 "github.com/tradex-mesh/tradex/gen/go/tradex/wallet/v1"
	"github.com/tradex-mesh/tradex/streams"
)

// TestMsgByID finds a message by its message id, of one key or of any,
// reads no more than its limit, and tells "not there" from "not found
// within the limit".
func TestMsgByID(t *testing.T) {
	t.Parallel()
	js := embeddedtest.New(t).JetStream()
	catalog := streams.DefaultCatalog()
	if err := streams.EnsureStreams(t.Context(), js, catalog); err != nil {
		t.Fatal(err)
	}
	client := streams.NewClient(js, catalog)
	pub := client.Publisher()
	since := time.Now().Add(-time.Minute)
	for i := range 10 {
		for _, key := range []string{"alice", "bob"} {
			id := fmt.Sprintf("%s-%d", key, i)
			if _, err := pub.Publish(t.Context(), streams.TopicBalanceChanged, key, &walletv1.BalanceChanged{EventId: id}, streams.WithMsgID(id)); err != nil {
				t.Fatal(err)
			}
		}
	}
	topic := streams.TopicBalanceChanged
	for _, tc := range []struct {
		name, key, id string
		limit         int
		want          error
	}{
		{"of a key", "bob", "bob-7", 8, nil},
		{"of any key", "", "bob-7", 16, nil},
		{"past the limit of a key", "bob", "bob-7", 7, streams.ErrScanLimit},
		{"past the limit of any key", "", "bob-7", 15, streams.ErrScanLimit},
		{"of another key", "alice", "bob-7", 100, streams.ErrNotFound},
		{"not there", "", "carol-1", 100, streams.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := client.MsgByID(t.Context(), topic, tc.key, tc.id, since, tc.limit)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("MsgByID: %v, %v; want %v", m, err, tc.want)
				}
				return
			}
			var ev walletv1.BalanceChanged
			if err != nil || m.Key != "bob" || m.Header.Get(streams.HeaderMsgID) != tc.id {
				t.Fatalf("MsgByID: %+v, %v", m, err)
			}
			if err := proto.Unmarshal(m.Data, &ev); err != nil || ev.GetEventId() != tc.id {
				t.Fatalf("payload %v, %v", &ev, err)
			}
		})
	}
}
