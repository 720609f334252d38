package schemaregistry

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/jhump/protoreflect/v2/protoprint"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/tradex-mesh/tradex/streams"
)

// schemaTypeProtobuf is the schemaType of every schema here.
const schemaTypeProtobuf = "PROTOBUF"

// renderedFile is one file of a descriptor set as a Confluent schema.
type renderedFile struct {
	path string
	doc  *schemaDoc
}

// renderedSchema is a registry entry's files as Confluent schemas.
type renderedSchema struct {
	topic    string
	revision uint64
	files    []renderedFile // dependencies first; the payload's file last among those it needs
	main     string         // path of the payload's file
	indexes  []int          // the payload message's index path in its file
	mainDoc  *schemaDoc
}

// schemaDoc is one distinct schema: text and references, by id.
type schemaDoc struct {
	id       int32
	text     string
	refNames []string // import paths, in import order
	refIDs   []int32  // the imported files' ids
}

// renderer turns descriptors into .proto text, rendering each distinct
// file once per build.
type renderer struct {
	printer protoprint.Printer
	texts   map[string]string // deterministic FileDescriptorProto bytes -> text
}

func newRenderer() *renderer {
	return &renderer{
		// Declaration order is kept (no sorting): message indexes count
		// messages in the order the rendered text declares them.
		printer: protoprint.Printer{OmitComments: protoprint.CommentsAll, Compact: true},
		texts:   map[string]string{},
	}
}

// render renders a registry entry's descriptor set.
func (r *renderer) render(s streams.Schema) (renderedSchema, error) {
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(s.FileDescriptorSet, &set); err != nil {
		return renderedSchema{}, fmt.Errorf("%w: %s revision %d: descriptor set: %w", ErrInvalidSchema, s.Topic, s.Revision, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return renderedSchema{}, fmt.Errorf("%w: %s revision %d: descriptors: %w", ErrInvalidSchema, s.Topic, s.Revision, err)
	}
	md, err := findMessage(files, s.MessageType)
	if err != nil {
		return renderedSchema{}, fmt.Errorf("%w: %s revision %d: %w", ErrInvalidSchema, s.Topic, s.Revision, err)
	}
	out := renderedSchema{topic: s.Topic, revision: s.Revision, main: md.ParentFile().Path(),
		indexes: MessageIndexes(md)}
	ids := map[string]int32{}
	for _, fdp := range set.GetFile() {
		fd, err := files.FindFileByPath(fdp.GetName())
		if err != nil {
			return renderedSchema{}, fmt.Errorf("%w: %s: %w", ErrInvalidSchema, fdp.GetName(), err)
		}
		doc, err := r.doc(fdp, fd, ids)
		if err != nil {
			return renderedSchema{}, err
		}
		ids[fd.Path()] = doc.id
		out.files = append(out.files, renderedFile{path: fd.Path(), doc: doc})
		if fd.Path() == out.main {
			out.mainDoc = doc
		}
	}
	return out, nil
}

// doc renders one file; ids holds the ids of the files it imports.
func (r *renderer) doc(fdp *descriptorpb.FileDescriptorProto, fd protoreflect.FileDescriptor, ids map[string]int32) (*schemaDoc, error) {
	text, err := r.text(fdp, fd)
	if err != nil {
		return nil, err
	}
	doc := &schemaDoc{text: text}
	imports := fd.Imports()
	for i := range imports.Len() {
		path := imports.Get(i).Path()
		id, ok := ids[path]
		if !ok {
			return nil, fmt.Errorf("%w: %s imports %s, which the set does not hold before it", ErrInvalidSchema, fd.Path(), path)
		}
		doc.refNames = append(doc.refNames, path)
		doc.refIDs = append(doc.refIDs, id)
	}
	doc.id = schemaID(doc)
	return doc, nil
}

// text renders fd, or returns its earlier rendering.
func (r *renderer) text(fdp *descriptorpb.FileDescriptorProto, fd protoreflect.FileDescriptor) (string, error) {
	key, err := proto.MarshalOptions{Deterministic: true}.Marshal(fdp)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrInvalidSchema, fd.Path(), err)
	}
	if text, ok := r.texts[string(key)]; ok {
		return text, nil
	}
	var b strings.Builder
	if err := r.printer.PrintProtoFile(fd, &b); err != nil {
		return "", fmt.Errorf("%w: render %s: %w", ErrInvalidSchema, fd.Path(), err)
	}
	r.texts[string(key)] = b.String()
	return b.String(), nil
}

// findMessage looks up a message by full name.
func findMessage(files interface {
	FindDescriptorByName(protoreflect.FullName) (protoreflect.Descriptor, error)
}, name string) (protoreflect.MessageDescriptor, error) {
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("%s is not a message", name)
	}
	return md, nil
}

// MessageIndexes returns the Confluent message-index path of md: its index
// among its file's top-level messages, then among each enclosing message's
// nested messages, outermost first.
func MessageIndexes(md protoreflect.MessageDescriptor) []int {
	var path []int
	for d := protoreflect.Descriptor(md); ; {
		m, ok := d.(protoreflect.MessageDescriptor)
		if !ok {
			break
		}
		path = append([]int{m.Index()}, path...)
		d = m.Parent()
	}
	return path
}

// schemaID derives a schema's id from its content: the first 31 bits of
// the SHA-256 of its type, text and references (names and ids). Ids are
// positive; 0, which some clients refuse, becomes 1.
func schemaID(doc *schemaDoc) int32 {
	h := sha256.New()
	h.Write([]byte(schemaTypeProtobuf + "\x00" + doc.text))
	for i, name := range doc.refNames {
		h.Write([]byte("\x00" + name + "\x00"))
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(doc.refIDs[i]))) //nolint:gosec // the id's bits
	}
	id := int32(binary.BigEndian.Uint32(h.Sum(nil)) & 0x7fffffff)
	return max(id, 1)
}
