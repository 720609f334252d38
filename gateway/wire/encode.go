package wire

import (
	"encoding/base64"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// timestampName is the full name of google.protobuf.Timestamp.
const timestampName protoreflect.FullName = "google.protobuf.Timestamp"

// Append appends the JSON of m to dst and returns the extended buffer.
func Append(dst []byte, m proto.Message) []byte {
	return appendMessage(dst, m.ProtoReflect())
}

// Marshal returns the JSON of m.
func Marshal(m proto.Message) []byte { return Append(nil, m) }

func appendMessage(dst []byte, m protoreflect.Message) []byte {
	desc := m.Descriptor()
	if desc.FullName() == timestampName {
		return appendTimestamp(dst, m)
	}
	dst = append(dst, '{')
	fields := desc.Fields()
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() && !m.Has(fd) {
			continue // of a oneof only the field that is set
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = appendString(dst, fd.JSONName())
		dst = append(dst, ':')
		dst = appendField(dst, m, fd)
	}
	return append(dst, '}')
}

func appendField(dst []byte, m protoreflect.Message, fd protoreflect.FieldDescriptor) []byte {
	switch {
	case fd.IsList():
		list := m.Get(fd).List()
		dst = append(dst, '[')
		for i := range list.Len() {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendValue(dst, fd, list.Get(i))
		}
		return append(dst, ']')
	case fd.IsMap():
		return appendMap(dst, m.Get(fd).Map(), fd.MapValue())
	case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
		if !m.Has(fd) {
			return append(dst, "null"...)
		}
	}
	return appendValue(dst, fd, m.Get(fd))
}

// appendMap appends a map field as an object (its own function: the
// closure would move every caller's buffer to the heap).
func appendMap(dst []byte, mp protoreflect.Map, vd protoreflect.FieldDescriptor) []byte {
	buf := &dst
	*buf = append(*buf, '{')
	first := true
	mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		if !first {
			*buf = append(*buf, ',')
		}
		first = false
		*buf = appendString(*buf, k.String())
		*buf = append(*buf, ':')
		*buf = appendValue(*buf, vd, v)
		return true
	})
	return append(*buf, '}')
}

func appendValue(dst []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return appendString(dst, v.String())
	case protoreflect.BoolKind:
		return strconv.AppendBool(dst, v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return strconv.AppendInt(dst, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return strconv.AppendUint(dst, v.Uint(), 10)
	case protoreflect.FloatKind:
		return strconv.AppendFloat(dst, v.Float(), 'g', -1, 32)
	case protoreflect.DoubleKind:
		return strconv.AppendFloat(dst, v.Float(), 'g', -1, 64)
	case protoreflect.EnumKind:
		return appendString(dst, enumShortName(fd.Enum(), v.Enum()))
	case protoreflect.BytesKind:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Bytes())
		return append(dst, '"')
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return appendMessage(dst, v.Message())
	}
	return append(dst, "null"...)
}

func appendTimestamp(dst []byte, m protoreflect.Message) []byte {
	ts, ok := m.Interface().(*timestamppb.Timestamp)
	if !ok {
		var t timestamppb.Timestamp
		proto.Merge(&t, m.Interface())
		ts = &t
	}
	dst = append(dst, '"')
	dst = ts.AsTime().UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// EnumName is the short lowercase name of an enum value ("buy" for
// SIDE_BUY); "" for the zero value named *_UNSPECIFIED.
func EnumName(e protoreflect.Enum) string {
	return enumShortName(e.Descriptor(), e.Number())
}

func enumShortName(ed protoreflect.EnumDescriptor, n protoreflect.EnumNumber) string {
	if name, ok := tableOf(ed).short[n]; ok {
		return name
	}
	return strconv.Itoa(int(n))
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			if r == utf8.RuneError {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			}
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
