package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// FieldError is a request body that does not fit its message: Field is the
// JSON path of the value at fault ("" for the body itself).
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unmarshal reads the JSON object data into m (which it resets first). It
// refuses invalid UTF-8 and a field given twice, under one spelling or
// both (instrumentId and instrument_id).
func Unmarshal(data []byte, m proto.Message) error {
	proto.Reset(m)
	if err := checkStrict(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return &FieldError{Reason: "not valid JSON: " + jsonReason(err)}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &FieldError{Reason: "not valid JSON: unexpected data after the object"}
	}
	return Set(m, v)
}

// Set reads the decoded JSON value v (from encoding/json with UseNumber:
// map[string]any, []any, string, json.Number, bool, nil) into m. Fields of
// m that v does not name are left as they are.
func Set(m proto.Message, v any) error {
	return setMessage(m.ProtoReflect(), v, "")
}

func jsonReason(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) {
		return "empty body"
	}
	return err.Error()
}

func setMessage(m protoreflect.Message, v any, path string) error {
	if m.Descriptor().FullName() == timestampName {
		return setTimestamp(m, v, path)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return &FieldError{Field: path, Reason: "must be a JSON object, not " + kindOf(v)}
	}
	fields := m.Descriptor().Fields()
	spelled := make(map[protoreflect.FieldNumber]string, len(obj))
	for key, val := range obj {
		fd := fields.ByJSONName(key)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(key))
		}
		fpath := join(path, key)
		if fd == nil {
			return &FieldError{Field: fpath, Reason: "unknown field"}
		}
		if other, dup := spelled[fd.Number()]; dup {
			first, second := min(other, key), max(other, key) // the same message whatever the map order
			return &FieldError{Field: join(path, first), Reason: "given twice, also as " + second}
		}
		spelled[fd.Number()] = key
		if val == nil {
			continue // null: the default
		}
		if err := setField(m, fd, val, fpath); err != nil {
			return err
		}
	}
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func setField(m protoreflect.Message, fd protoreflect.FieldDescriptor, v any, path string) error {
	switch {
	case fd.IsList():
		arr, ok := v.([]any)
		if !ok {
			return &FieldError{Field: path, Reason: "must be a JSON array, not " + kindOf(v)}
		}
		list := m.Mutable(fd).List()
		for i, item := range arr {
			ipath := path + "[" + strconv.Itoa(i) + "]"
			if fd.Kind() == protoreflect.MessageKind {
				elem := list.NewElement()
				if err := setMessage(elem.Message(), item, ipath); err != nil {
					return err
				}
				list.Append(elem)
				continue
			}
			val, err := scalar(fd, item, ipath)
			if err != nil {
				return err
			}
			list.Append(val)
		}
		return nil
	case fd.IsMap():
		obj, ok := v.(map[string]any)
		if !ok {
			return &FieldError{Field: path, Reason: "must be a JSON object, not " + kindOf(v)}
		}
		mp := m.Mutable(fd).Map()
		for k, item := range obj {
			ipath := path + "." + k
			key, err := scalar(fd.MapKey(), k, ipath)
			if err != nil {
				return err
			}
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				elem := mp.NewValue()
				if err := setMessage(elem.Message(), item, ipath); err != nil {
					return err
				}
				mp.Set(key.MapKey(), elem)
				continue
			}
			val, err := scalar(fd.MapValue(), item, ipath)
			if err != nil {
				return err
			}
			mp.Set(key.MapKey(), val)
		}
		return nil
	case fd.Kind() == protoreflect.MessageKind:
		return setMessage(m.Mutable(fd).Message(), v, path)
	}
	val, err := scalar(fd, v, path)
	if err != nil {
		return err
	}
	m.Set(fd, val)
	return nil
}

// scalar converts one JSON value to a non-message field value.
func scalar(fd protoreflect.FieldDescriptor, v any, path string) (protoreflect.Value, error) {
	bad := func(reason string) (protoreflect.Value, error) {
		return protoreflect.Value{}, &FieldError{Field: path, Reason: reason}
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		switch x := v.(type) {
		case string:
			return protoreflect.ValueOfString(x), nil
		case json.Number:
			if strings.ContainsAny(string(x), "eE") {
				return bad("write the number without an exponent (or as a decimal string)")
			}
			return protoreflect.ValueOfString(string(x)), nil
		}
		return bad("must be a string, not " + kindOf(v))
	case protoreflect.BoolKind:
		if b, ok := v.(bool); ok {
			return protoreflect.ValueOfBool(b), nil
		}
		return bad("must be true or false, not " + kindOf(v))
	case protoreflect.EnumKind:
		n, err := enumNumber(fd.Enum(), v)
		if err != nil {
			return bad(err.Error())
		}
		return protoreflect.ValueOfEnum(n), nil
	case protoreflect.BytesKind:
		s, ok := v.(string)
		if !ok {
			return bad("must be a base64 string, not " + kindOf(v))
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return bad("must be standard base64")
		}
		return protoreflect.ValueOfBytes(b), nil
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f, err := strconv.ParseFloat(numberText(v), 64)
		if err != nil {
			return bad("must be a number")
		}
		if fd.Kind() == protoreflect.FloatKind {
			return protoreflect.ValueOfFloat32(float32(f)), nil
		}
		return protoreflect.ValueOfFloat64(f), nil
	}
	return integer(fd, v, path)
}

func integer(fd protoreflect.FieldDescriptor, v any, path string) (protoreflect.Value, error) {
	text := numberText(v)
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		n, err := strconv.ParseInt(text, 10, 32)
		if err != nil {
			return protoreflect.Value{}, &FieldError{Field: path, Reason: fmt.Sprintf("must be an integer from %d to %d", math.MinInt32, math.MaxInt32)}
		}
		return protoreflect.ValueOfInt32(int32(n)), nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		n, err := strconv.ParseUint(text, 10, 32)
		if err != nil {
			return protoreflect.Value{}, &FieldError{Field: path, Reason: fmt.Sprintf("must be an integer from 0 to %d", uint32(math.MaxUint32))}
		}
		return protoreflect.ValueOfUint32(uint32(n)), nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil {
			return protoreflect.Value{}, &FieldError{Field: path, Reason: "must be a non-negative integer"}
		}
		return protoreflect.ValueOfUint64(n), nil
	default:
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return protoreflect.Value{}, &FieldError{Field: path, Reason: "must be an integer"}
		}
		return protoreflect.ValueOfInt64(n), nil
	}
}

// numberText is the literal of a JSON number or of a string holding one.
func numberText(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return x
	}
	return "not a number"
}

// enumNumber reads an enum value: its short name ("buy", any case), its
// full name ("SIDE_BUY") or its number.
func enumNumber(ed protoreflect.EnumDescriptor, v any) (protoreflect.EnumNumber, error) {
	switch x := v.(type) {
	case string:
		upper := strings.ToUpper(strings.TrimSpace(x))
		if upper == "" {
			return 0, nil
		}
		if n, ok := tableOf(ed).byName[upper]; ok {
			return n, nil
		}
	case json.Number:
		n, err := strconv.ParseInt(string(x), 10, 32)
		if err == nil && ed.Values().ByNumber(protoreflect.EnumNumber(n)) != nil {
			return protoreflect.EnumNumber(n), nil
		}
	}
	return 0, fmt.Errorf("must be one of %s", strings.Join(EnumNames(ed), ", "))
}

// EnumNames lists the short names of an enum's values, quoted, without
// the unspecified one.
func EnumNames(ed protoreflect.EnumDescriptor) []string {
	return append([]string(nil), tableOf(ed).names...)
}

func setTimestamp(m protoreflect.Message, v any, path string) error {
	s, ok := v.(string)
	if !ok {
		return &FieldError{Field: path, Reason: "must be an RFC 3339 time string, not " + kindOf(v)}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return &FieldError{Field: path, Reason: "must be an RFC 3339 time such as 2026-12-01T10:00:00Z"}
	}
	ts := timestamppb.New(t)
	r := ts.ProtoReflect()
	fields := r.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		m.Set(m.Descriptor().Fields().ByNumber(fd.Number()), r.Get(fd))
	}
	return nil
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
