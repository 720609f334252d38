package wire

import (
	"bytes"
	"encoding/json"
	"errors"
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
	if err := checkValue(dec, ""); !errors.Is(err, errMalformed) {
		return err
	}
	return nil // not JSON: Unmarshal reports it, with its offset
}

// errMalformed stops the check at a syntax error (or the end of the data).
var errMalformed = errors.New("malformed")

// checkValue reads one JSON value, checking the keys of every object in
// it; path names where it is.
func checkValue(dec *json.Decoder, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return errMalformed
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return errMalformed
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
		if _, err := dec.Token(); err != nil { // '}'
			return errMalformed
		}
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec, path); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return errMalformed
		}
	}
	return nil
}
