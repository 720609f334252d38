package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"unicode/utf8"
)

// checkStrict refuses what encoding/json would take silently: invalid
// UTF-8 (it would become U+FFFD) and a key given twice in one object (the
// last would win).
func checkStrict(data []byte) error {
	if !utf8.Valid(data) {
		return &FieldError{Reason: "not valid JSON: invalid UTF-8"}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return checkValue(dec, "")
}

// checkValue reads one JSON value, checking the keys of every object in
// it; path names where it is.
func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty body: Unmarshal reports it
		}
		return nil // a syntax error: Unmarshal reports it with its offset
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil
			}
			key, _ := kt.(string)
			if seen[key] {
				return &FieldError{Field: join(path, key), Reason: "given twice"}
			}
			seen[key] = true
			if err := checkValue(dec, join(path, key)); err != nil {
				return err
			}
		}
		_, _ = dec.Token() // '}'
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if err := checkValue(dec, path); err != nil {
				return err
			}
		}
		_, _ = dec.Token() // ']'
	}
	return nil
}
