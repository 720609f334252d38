// decode.mjs decodes one Kafka record value in the Confluent wire format
// with @kafkajs/confluent-schema-registry, fetching the schema and its
// references from a schema registry, and prints the message as JSON:
//
//   node decode.mjs REGISTRY_URL USER PASSWORD HEX_VALUE
//
// It prints {"via": ..., "type": ..., "message": ...}. A record whose
// message is its file's first (message indexes [0]) is decoded by
// registry.decode(buffer) alone. The library ignores the message-index
// array (it decodes with the file's first message), so for any other
// message the script reads the indexes itself, names the message they
// point at in the schema text, and asks the library for the schema
// (references included) with that messageName.
import registryPkg from '@kafkajs/confluent-schema-registry';
import protobuf from 'protobufjs';

const { SchemaRegistry, SchemaType } = registryPkg;

const [host, username, password, hex] = process.argv.slice(2);
if (!hex) {
  console.error('usage: node decode.mjs REGISTRY_URL USER PASSWORD HEX_VALUE');
  process.exit(2);
}
const value = Buffer.from(hex, 'hex');
const auth = { username, password };

// readZigZag reads a zig-zag varint at offset and returns [value, next offset].
function readZigZag(buf, offset) {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (offset >= buf.length) throw new Error('truncated message indexes');
    const b = buf[offset++];
    result += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if ((b & 0x80) === 0) break;
  }
  return [result % 2 === 0 ? result / 2 : -(result + 1) / 2, offset];
}

// header splits the Confluent protobuf wire format.
function header(buf) {
  if (buf.length < 6 || buf[0] !== 0) throw new Error('not in the Confluent wire format');
  const id = buf.readInt32BE(1);
  let [count, offset] = readZigZag(buf, 5);
  if (count === 0) return { id, indexes: [0], payload: buf.subarray(offset) };
  const indexes = [];
  for (let i = 0; i < count; i++) {
    let index;
    [index, offset] = readZigZag(buf, offset);
    indexes.push(index);
  }
  return { id, indexes, payload: buf.subarray(offset) };
}

// messageName names the message at indexes in a schema's text, relative
// to its package ("Outer.Inner").
function messageName(schemaText, indexes) {
  const parsed = protobuf.parse(schemaText);
  let ns = parsed.package ? parsed.root.lookup(parsed.package) : parsed.root;
  const names = [];
  for (const i of indexes) {
    const messages = ns.nestedArray.filter((n) => n instanceof protobuf.Type);
    if (i >= messages.length) throw new Error(`message index ${i} out of range`);
    ns = messages[i];
    names.push(ns.name);
  }
  return names.join('.');
}

async function main() {
  const { id, indexes, payload } = header(value);
  if (indexes.length === 1 && indexes[0] === 0) {
    const registry = new SchemaRegistry({ host, auth });
    const message = await registry.decode(value);
    return { via: 'registry.decode', type: message.$type.fullName.slice(1), message: message.toJSON() };
  }
  const res = await fetch(`${host}/schemas/ids/${id}`, {
    headers: { Authorization: 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64') },
  });
  if (!res.ok) throw new Error(`GET /schemas/ids/${id}: ${res.status} ${await res.text()}`);
  const name = messageName((await res.json()).schema, indexes);
  const registry = new SchemaRegistry({ host, auth }, { [SchemaType.PROTOBUF]: { messageName: name } });
  const schema = await registry.getSchema(id);
  const message = schema.message.decode(payload);
  return { via: 'registry.getSchema+messageName', type: schema.message.fullName.slice(1), message: message.toJSON() };
}

main().then(
  (out) => process.stdout.write(JSON.stringify(out) + '\n'),
  (err) => {
    console.error(err && err.stack ? err.stack : String(err));
    process.exit(1);
  },
);
