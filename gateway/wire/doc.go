// Package wire is the JSON dialect of the gateway's REST and WebSocket APIs,
// mapped onto the protobuf contracts.
//
// It reads and writes any message of the contracts by reflection, with the
// rules a REST client expects rather than protojson's:
//
//   - field names are the proto JSON names (camelCase: instrumentId);
//     a request may also use the proto names (instrument_id);
//   - enums are their short lowercase names: SIDE_BUY is "buy",
//     ORDER_STATUS_PARTIALLY_FILLED is "partially_filled", an unset enum is
//     ""; a request may also send the full name or the number;
//   - decimals (string fields) are written as strings; a request may send a
//     JSON number instead, whose literal is kept exactly as written (10.5 is
//     "10.5", never a float64);
//   - 64-bit integers are JSON numbers; timestamps RFC 3339 strings in UTC;
//     an unset message is null; every field is written, lists as [] when
//     empty, and of a oneof only the field that is set;
//   - an unknown field, a wrong type or a bad enum name in a request is a
//     *FieldError naming the field (its JSON path, such as "channels[0].name").
package wire
