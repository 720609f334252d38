package wsfeed

import (
	"google.golang.org/protobuf/proto"

	"github.com/tradex-mesh/tradex/gateway/wire"
)

// Data frames: {"op":<channel>,"type":<type>,"symbol":<symbol>,
// ["interval":<interval>,]"data":<payload>}, the payload in the REST JSON
// dialect. A frame is encoded once and shared by every subscriber.

const (
	typeSnapshot = "snapshot"
	typeDelta    = "delta"
	typeUpdate   = "update"
)

// appendHead appends a data frame up to its payload. Symbols and channel
// names are checked to need no escaping.
func appendHead(dst []byte, k key, typ string) []byte {
	dst = append(dst, `{"op":"`...)
	dst = append(dst, k.ch.String()...)
	dst = append(dst, `","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, '"')
	if !k.ch.private() {
		dst = append(dst, `,"symbol":"`...)
		dst = append(dst, k.name...)
		dst = append(dst, '"')
	}
	if k.ch == chCandles {
		dst = append(dst, `,"interval":"`...)
		dst = append(dst, intervalName(k.interval)...)
		dst = append(dst, '"')
	}
	return append(dst, `,"data":`...)
}

// dataFrame encodes a frame whose payload is one message.
func dataFrame(k key, typ string, m proto.Message) *frame {
	b := appendHead(make([]byte, 0, 256), k, typ)
	b = appendJSON(b, m)
	return sharedFrame(append(b, '}'))
}

// listFrame encodes a frame whose payload is a list of messages.
func listFrame[M proto.Message](k key, typ string, ms []M) *frame {
	b := appendHead(make([]byte, 0, 256+256*len(ms)), k, typ)
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSON(b, m)
	}
	return sharedFrame(append(b, ']', '}'))
}

// appendJSON appends m in the gateway's JSON dialect (the REST one).
func appendJSON(dst []byte, m proto.Message) []byte { return wire.Append(dst, m) }
