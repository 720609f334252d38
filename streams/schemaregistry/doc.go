// Package schemaregistry lets off-the-shelf Kafka consumers that use a
// Confluent Schema Registry decode TradeX events written in the Confluent
// wire format.
//
// An Index turns the schemas of the project's registry (streams.Registry,
// the "tradex_schemas" bucket) into Confluent subjects: "<topic>-value"
// (TopicNameStrategy) for each topic, with the payload's file rendered as
// .proto source, and one subject per imported file named by its path
// ("google/protobuf/timestamp.proto", "tradex/common/v1/common.proto"), as
// Confluent's serializers register them, listed in the schema's references.
//
// Schema ids are derived from content alone (a hash of the schema text and
// of its references' ids), so the Kafka bridge and the registry server agree
// on them without talking to each other. A subject's version is the KV
// revision of the first registry entry that carried that schema, so every
// process reading the same bucket numbers versions alike; the bucket's
// history keeps older revisions, whose ids keep resolving while it holds
// them.
//
// NewHandler serves the read side of the Confluent REST API from a Source
// (an Index, or a Live index rebuilt when the bucket changes) behind HTTP
// Basic authentication. Index.Prefix and Index.Strip add and remove the
// wire-format header (magic byte, schema id, message indexes) for the
// bridge.
package schemaregistry
