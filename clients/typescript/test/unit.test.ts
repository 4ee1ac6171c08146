/** The client's own logic, without a server: error details, CloudEvents, the actions file. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  DeadlineExceeded,
  ExecutionMode,
  InvalidArgument,
  NotFound,
  Priority,
  Unavailable,
  fromCloudEvent,
  fromConnectError,
  parseYaml,
} from "../src/index.js";

function errorInfo(reason: string, metadata: Record<string, string>): Uint8Array {
  const w = new BinaryWriter();
  w.tag(1, 2).string(reason).tag(2, 2).string("neoactions.dev");
  for (const [k, v] of Object.entries(metadata)) w.tag(3, 2).bytes(new BinaryWriter().tag(1, 2).string(k).tag(2, 2).string(v).finish());
  return w.finish();
}

function badRequest(fields: [string, string][]): Uint8Array {
  const w = new BinaryWriter();
  for (const [f, d] of fields) w.tag(1, 2).bytes(new BinaryWriter().tag(1, 2).string(f).tag(2, 2).string(d).finish());
  return w.finish();
}

test("ErrorInfo and BadRequest details become the error's reason, metadata and violations", () => {
  const err = new ConnectError("trigger.event_types[0]: not a valid pattern", Code.InvalidArgument);
  err.details = [
    { type: "google.rpc.ErrorInfo", value: errorInfo("INVALID_PATTERN", { action: "a" }) },
    { type: "google.rpc.BadRequest", value: badRequest([["trigger.event_types[0]", "not a valid pattern"]]) },
  ];
  const typed = fromConnectError(err);
  assert.ok(typed instanceof InvalidArgument);
  assert.equal(typed.reason, "INVALID_PATTERN");
  assert.equal(typed.message, "trigger.event_types[0]: not a valid pattern");
  assert.deepEqual(typed.metadata, { action: "a" });
  assert.deepEqual(typed.violations, [{ field: "trigger.event_types[0]", description: "not a valid pattern" }]);
  assert.equal(typed.code, Code.InvalidArgument);
});

test("without details the code picks the class and its default reason", () => {
  const notFound = fromConnectError(new ConnectError("gone", Code.NotFound));
  assert.ok(notFound instanceof NotFound);
  assert.equal(notFound.reason, "NOT_FOUND");
  const late = fromConnectError(new ConnectError("late", Code.DeadlineExceeded));
  assert.ok(late instanceof DeadlineExceeded && late instanceof Unavailable);
  const garbled = new ConnectError("x", Code.NotFound);
  garbled.details = [{ type: "google.rpc.ErrorInfo", value: new Uint8Array([0xff, 0xff, 0xff]) }];
  assert.equal(fromConnectError(garbled).reason, "NOT_FOUND");
});

test("a CloudEvent maps to an event: id and source kept, known extensions to fields, others to metadata", () => {
  const input = fromCloudEvent({
    specversion: "1.0",
    id: "42",
    source: "//shop",
    type: "orders.created",
    subject: "order/1",
    time: "2026-01-02T03:04:05Z",
    datacontenttype: "application/json",
    correlationid: "c-1",
    idempotencykey: "k-1",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    data: { amount: 5 },
  });
  assert.equal(input.id, "42");
  assert.equal(input.source, "//shop");
  assert.equal(input.subject, "order/1");
  assert.equal(input.correlationId, "c-1");
  assert.equal(input.idempotencyKey, "k-1");
  assert.equal(input.time?.toISOString(), "2026-01-02T03:04:05.000Z");
  assert.deepEqual(input.metadata, {
    datacontenttype: "application/json",
    traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
  });
  assert.deepEqual(input.data, { amount: 5 });
  assert.throws(() => fromCloudEvent({ id: "1", source: "s", type: "a.b", data: [1] }), InvalidArgument);
  assert.throws(() => fromCloudEvent({ specversion: "0.3", id: "1", source: "s", type: "a.b" }), /specversion/);
});

test("the actions file: the Python client's format, every problem named by its path", () => {
  const [doc] = parseYaml(`
actions:
  - name: a
    trigger: {event_types: orders.created, conditions: [{not: {field: data.x, operator: exists}}]}
    handler: {type: python, config: {function: "m:f"}}
    priority: HIGH
    execution_mode: queued
    enabled: false
`);
  assert.ok(doc);
  assert.equal(doc.name, "a");
  assert.equal(doc.enabled, false);
  assert.deepEqual(doc.action.trigger?.eventTypes, ["orders.created"]);
  assert.equal(doc.action.trigger?.conditions[0]?.negate?.field, "data.x");
  assert.equal(doc.action.priority, Priority.HIGH);
  assert.equal(doc.action.executionMode, ExecutionMode.QUEUED);

  assert.throws(
    () =>
      parseYaml(`
actions:
  - name: a
    trigger: {event_types: []}
    handler: {type: python}
    priority: urgent
  - name: b
    trigger: {event_types: [x.y]}
    handler: {type: python}
  - name: b
    trigger: {event_types: [x.z]}
    handler: {type: python}
`),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.equal(err.reason, "INVALID_ACTIONS_FILE");
      assert.deepEqual(
        err.violations.map((v) => v.field),
        ["actions[0].trigger.event_types", "actions[0].priority", "actions[2].name"],
      );
      return true;
    },
  );
  assert.throws(() => parseYaml("actions: [\n"), (err: unknown) => err instanceof InvalidArgument && err.reason === "MALFORMED_YAML");
});
