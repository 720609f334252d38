// Package streams is the TradeX event mesh: Kafka-style topics delivered on
// NATS JetStream.
//
// Every service publishes and consumes only through this package. It gives
// the platform's Kafka semantics on JetStream:
//
//   - a topic catalog ([Catalog], [DefaultCatalog]): each topic's payload type,
//     partition key and durability [Profile], mapped to one stream per topic
//     ([StreamName]) and one subject per key ([Subject]);
//   - provisioning ([EnsureStreams]) that creates or updates every stream at
//     start-up and refuses one whose configuration contradicts its profile;
//   - typed publishing ([Publisher]) that checks the payload type, sets the
//     platform's headers (Nats-Msg-Id, CloudEvents ce-*, Content-Type,
//     traceparent, X-Correlation-Id) and waits for the broker's ack;
//   - durable consumers ([Consume]) with ack after success, retries with
//     exponential backoff and jitter, per-key ordering with parallelism across
//     keys, and a dead-letter topic after a bounded number of deliveries;
//   - dead-letter inspection and redrive ([DLQ]), idempotent handlers
//     ([Idempotent]), a schema registry ([Registry]) and a watch helper over
//     KV buckets ([WatchKV]).
//
// docs/streams.md is the guide; streams/streamstest is the conformance suite
// that every deployment shape (single node, cluster) must pass.
package streams
