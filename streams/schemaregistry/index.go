package schemaregistry

import (
	"errors"
	"fmt"
	"slices"

	"github.com/tradex-mesh/tradex/streams"
)

// SubjectSuffix follows the topic in its value subject (TopicNameStrategy).
const SubjectSuffix = "-value"

// Errors of Index look-ups, which the handler answers with Confluent's
// error codes.
var (
	// ErrSubjectNotFound: no such subject (40401).
	ErrSubjectNotFound = errors.New("subject not found")
	// ErrVersionNotFound: the subject has no such version (40402).
	ErrVersionNotFound = errors.New("version not found")
	// ErrSchemaNotFound: no schema has that id (40403).
	ErrSchemaNotFound = errors.New("schema not found")
)

// Reference names a schema another one imports: Name is the import path,
// Subject and Version where it is registered.
type Reference struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// Schema is one registered schema: .proto source text and the schemas it
// imports.
type Schema struct {
	// ID is the schema's id, derived from its content.
	ID int32 `json:"id"`
	// SchemaType is always "PROTOBUF".
	SchemaType string `json:"schemaType"`
	// Schema is the file's .proto source text.
	Schema string `json:"schema"`
	// References are the files it imports, in import order.
	References []Reference `json:"references,omitempty"`
}

// SubjectVersion is a schema as registered under one version of a subject.
type SubjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	Schema
}

// Index maps Confluent subjects, versions and ids to the registry's
// schemas, and topics to their wire-format headers. It is immutable and
// safe for concurrent use; build a new one when the registry changes (see
// Live).
type Index struct {
	schemas  map[int32]Schema
	subjects map[string][]subjectVersion // versions ascending
	topics   map[string]topicEntry
}

// subjectVersion is one version of a subject.
type subjectVersion struct {
	version int
	id      int32
}

// topicEntry is what the wire format needs of a topic.
type topicEntry struct {
	id       int32
	prefix   []byte          // header for the current schema, capacity clipped
	accepted map[string]bool // the header of every known schema of the topic
}

// indexBuilder accumulates registry entries into an Index.
type indexBuilder struct {
	docs     map[int32]*schemaDoc
	origin   map[int32]string // id -> the first subject that registered it, for collision reports
	subjects map[string][]subjectVersion
	topics   map[string]topicEntry
}

// NewIndex builds an index from registry entries: every entry is a
// revision of its topic's schema, and a topic's current schema is its entry
// with the highest Revision (the last one given among equal revisions). A
// subject's version is the Revision of the first entry that carried the
// schema (or the next number after the subject's last version when
// Revision is 0, as for schemas from streams.SchemaOf).
func NewIndex(entries []streams.Schema) (*Index, error) {
	entries = slices.Clone(entries)
	slices.SortStableFunc(entries, func(a, b streams.Schema) int { return compareRevision(a.Revision, b.Revision) })
	b := indexBuilder{docs: map[int32]*schemaDoc{}, origin: map[int32]string{},
		subjects: map[string][]subjectVersion{}, topics: map[string]topicEntry{}}
	r := newRenderer()
	for _, s := range entries {
		rs, err := r.render(s)
		if err != nil {
			return nil, err
		}
		if err := b.add(rs); err != nil {
			return nil, err
		}
	}
	return b.index(), nil
}

func compareRevision(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// add registers the files of one entry and makes it its topic's current
// schema.
func (b *indexBuilder) add(rs renderedSchema) error {
	for _, f := range rs.files {
		subject := f.path
		if f.path == rs.main {
			subject = rs.topic + SubjectSuffix
		}
		if err := b.register(subject, f.doc, rs.revision); err != nil {
			return err
		}
	}
	t, ok := b.topics[rs.topic]
	if !ok {
		t.accepted = map[string]bool{}
	}
	t.id = rs.mainDoc.id
	t.prefix = slices.Clip(AppendHeader(nil, t.id, rs.indexes))
	t.accepted[string(t.prefix)] = true
	b.topics[rs.topic] = t
	return nil
}

// register adds doc to subject unless the subject has it already.
func (b *indexBuilder) register(subject string, doc *schemaDoc, revision uint64) error {
	if known, ok := b.docs[doc.id]; ok && !sameDoc(known, doc) {
		return fmt.Errorf("%w: id %d of %s and of %s", ErrIDCollision, doc.id, b.origin[doc.id], subject)
	}
	if _, ok := b.docs[doc.id]; !ok {
		b.docs[doc.id], b.origin[doc.id] = doc, subject
	}
	versions := b.subjects[subject]
	if slices.ContainsFunc(versions, func(v subjectVersion) bool { return v.id == doc.id }) {
		return nil
	}
	next := 1
	if n := len(versions); n > 0 {
		next = versions[n-1].version + 1
	}
	version := next
	if revision > uint64(next) {
		version = int(min(revision, 1<<31-1))
	}
	b.subjects[subject] = append(versions, subjectVersion{version: version, id: doc.id})
	return nil
}

func sameDoc(a, b *schemaDoc) bool {
	return a.text == b.text && slices.Equal(a.refNames, b.refNames) && slices.Equal(a.refIDs, b.refIDs)
}

// index freezes the builder, resolving each reference to its version.
func (b *indexBuilder) index() *Index {
	idx := &Index{schemas: make(map[int32]Schema, len(b.docs)), subjects: b.subjects, topics: b.topics}
	for id, doc := range b.docs {
		s := Schema{ID: id, SchemaType: schemaTypeProtobuf, Schema: doc.text}
		for i, name := range doc.refNames {
			s.References = append(s.References, Reference{Name: name, Subject: name,
				Version: b.versionOf(name, doc.refIDs[i])})
		}
		idx.schemas[id] = s
	}
	return idx
}

// versionOf is the version of id under subject.
func (b *indexBuilder) versionOf(subject string, id int32) int {
	for _, v := range b.subjects[subject] {
		if v.id == id {
			return v.version
		}
	}
	return 0 // unreachable: a file is registered before the files importing it
}

// Current returns the index itself, so that a fixed index is a Source.
func (i *Index) Current() *Index { return i }

// Subjects returns every subject, sorted.
func (i *Index) Subjects() []string {
	out := make([]string, 0, len(i.subjects))
	for s := range i.subjects {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Versions returns the versions of subject, ascending.
func (i *Index) Versions(subject string) ([]int, error) {
	vs, ok := i.subjects[subject]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	out := make([]int, len(vs))
	for k, v := range vs {
		out[k] = v.version
	}
	return out, nil
}

// Version returns version of subject; Latest asks for its last one.
func (i *Index) Version(subject string, version int) (SubjectVersion, error) {
	vs, ok := i.subjects[subject]
	if !ok {
		return SubjectVersion{}, fmt.Errorf("%w: %q", ErrSubjectNotFound, subject)
	}
	if version == Latest {
		version = vs[len(vs)-1].version
	}
	for _, v := range vs {
		if v.version == version {
			return SubjectVersion{Subject: subject, Version: version, Schema: i.schemas[v.id]}, nil
		}
	}
	return SubjectVersion{}, fmt.Errorf("%w: %q version %d", ErrVersionNotFound, subject, version)
}

// Latest is the version that asks Version for a subject's last version.
const Latest = -1

// SchemaByID returns the schema with id.
func (i *Index) SchemaByID(id int32) (Schema, error) {
	s, ok := i.schemas[id]
	if !ok {
		return Schema{}, fmt.Errorf("%w: id %d", ErrSchemaNotFound, id)
	}
	return s, nil
}

// TopicID returns the id of topic's current schema.
func (i *Index) TopicID(topic string) (int32, error) {
	t, err := i.topic(topic)
	return t.id, err
}

// Prefix returns the wire-format header to put before a payload of topic
// in a record value: magic byte, the current schema's id and the payload
// message's indexes. The slice is shared: do not modify it (appending to
// it copies).
func (i *Index) Prefix(topic string) ([]byte, error) {
	t, err := i.topic(topic)
	return t.prefix, err
}

// Encode returns payload, a serialized message of topic, with its
// wire-format header.
func (i *Index) Encode(topic string, payload []byte) ([]byte, error) {
	t, err := i.topic(topic)
	if err != nil {
		return nil, err
	}
	return append(append(make([]byte, 0, len(t.prefix)+len(payload)), t.prefix...), payload...), nil
}

// Strip checks the wire-format header of a record value of topic, written
// with the topic's current or an older known schema, and returns the
// payload after it. A header naming another schema or message is an error
// wrapping ErrWrongSchema; a value without a header wraps ErrNotWireFormat.
func (i *Index) Strip(topic string, value []byte) ([]byte, error) {
	t, err := i.topic(topic)
	if err != nil {
		return nil, err
	}
	// Fast path: the current schema's header, compared byte for byte.
	if len(value) >= len(t.prefix) && string(value[:len(t.prefix)]) == string(t.prefix) {
		return value[len(t.prefix):], nil
	}
	id, indexes, payload, err := ParseHeader(value)
	if err != nil {
		return nil, fmt.Errorf("record of %s: %w", topic, err)
	}
	if !t.accepted[string(AppendHeader(nil, id, indexes))] {
		return nil, fmt.Errorf("record of %s: %w: schema id %d with message indexes %v is not one of the topic's (current: id %d)",
			topic, ErrWrongSchema, id, indexes, t.id)
	}
	return payload, nil
}

// topic returns topic's entry.
func (i *Index) topic(topic string) (topicEntry, error) {
	t, ok := i.topics[topic]
	if !ok {
		return topicEntry{}, fmt.Errorf("%w %q: not in the schema index", streams.ErrUnknownTopic, topic)
	}
	return t, nil
}
