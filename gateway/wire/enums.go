package wire

import (
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// enumTable is the spellings of one enum's values.
type enumTable struct {
	short  map[protoreflect.EnumNumber]string // "buy"; "" for *_UNSPECIFIED
	byName map[string]protoreflect.EnumNumber // "BUY" and "SIDE_BUY"
	names  []string                           // quoted short names, unspecified left out
}

// enumTables memoizes enumTable by the enum's full name. The contracts are
// fixed at build time, so it only ever grows to their enums: a cache, not
// state.
var enumTables sync.Map

func tableOf(ed protoreflect.EnumDescriptor) *enumTable {
	if t, ok := enumTables.Load(ed.FullName()); ok {
		return t.(*enumTable) //nolint:forcetypeassert // only enumTables.Store below writes it
	}
	prefix := enumPrefix(ed)
	values := ed.Values()
	t := &enumTable{short: map[protoreflect.EnumNumber]string{}, byName: map[string]protoreflect.EnumNumber{}}
	for i := range values.Len() {
		v := values.Get(i)
		full := string(v.Name())
		name := strings.TrimPrefix(full, prefix)
		t.byName[full] = v.Number()
		t.byName[name] = v.Number()
		if name == "UNSPECIFIED" {
			t.short[v.Number()] = ""
			continue
		}
		t.short[v.Number()] = strings.ToLower(name)
		t.names = append(t.names, strconv.Quote(strings.ToLower(name)))
	}
	enumTables.Store(ed.FullName(), t)
	return t
}

// enumPrefix is the UPPER_SNAKE form of an enum's name plus "_", the prefix
// of its values by the style guide (Side: "SIDE_", OrderType: "ORDER_TYPE_").
func enumPrefix(ed protoreflect.EnumDescriptor) string {
	name := string(ed.Name())
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	b.WriteByte('_')
	return strings.ToUpper(b.String())
}
