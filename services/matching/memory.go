package matching

import (
	"encoding/binary"
	"errors"
	"time"
)

// commandMemory remembers the submit command ids an instrument executed
// within a horizon of stream time, oldest first, so that a submit stored
// again after the stream's duplicate window (a retry after any delay) is
// rejected instead of executed twice. It advances with the commands' stream
// times only, so a replay remembers exactly what the first run did; it is
// part of the snapshot.
type commandMemory struct {
	horizon time.Duration
	ids     map[string]struct{}
	log     []remembered // in input order
}

// remembered is one command id and its command's stream time.
type remembered struct {
	id string
	at time.Time
}

// seen forgets what is older than the horizon before at and reports
// whether id is remembered; if not, it remembers it.
func (m *commandMemory) seen(id string, at time.Time) bool {
	if m.ids == nil {
		m.ids = map[string]struct{}{}
	}
	cut := at.Add(-m.horizon)
	n := 0
	for n < len(m.log) && m.log[n].at.Before(cut) {
		delete(m.ids, m.log[n].id)
		n++
	}
	m.log = m.log[n:]
	if _, ok := m.ids[id]; ok {
		return true
	}
	m.ids[id] = struct{}{}
	m.log = append(m.log, remembered{id: id, at: at})
	return false
}

// appendBinary writes the count, then each id (length, bytes) and time
// (Unix nanoseconds), as uvarints.
func (m *commandMemory) appendBinary(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m.log)))
	for _, r := range m.log {
		b = binary.AppendUvarint(b, uint64(len(r.id)))
		b = append(b, r.id...)
		b = binary.AppendUvarint(b, uint64(r.at.UnixNano()))
	}
	return b
}

// errTruncated is a memory cut short in a snapshot.
var errTruncated = errors.New("command memory truncated")

// readBinary reads what appendBinary wrote and returns the rest.
func (m *commandMemory) readBinary(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errTruncated
	}
	b = b[k:]
	m.ids, m.log = make(map[string]struct{}, n), make([]remembered, 0, n)
	for range n {
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) { //nolint:gosec // k <= len(b): len(b)-k is not negative
			return nil, errTruncated
		}
		id := string(b[k : k+int(l)]) //nolint:gosec // bounded by len(b) above
		b = b[k+int(l):]              //nolint:gosec // bounded by len(b) above
		ns, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, errTruncated
		}
		b = b[k:]
		m.ids[id] = struct{}{}
		m.log = append(m.log, remembered{id: id, at: time.Unix(0, int64(ns))}) //nolint:gosec // written from a positive int64
	}
	return b, nil
}
