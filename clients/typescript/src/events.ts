/** Events to publish: the native form and the CloudEvents 1.0 form, as `neoactions.v1.Event`. */
import { create, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "./gen/neoactions/v1/events_pb.js";
import { InvalidArgument } from "./errors.js";

/** One event to publish. `data` and `metadata` are JSON objects. */
export interface EventInput {
  /** Dot notation, lowercase segments of `[a-z0-9_]`: `orders.created`. */
  type: string;
  data?: JsonObject;
  /** Request context (user, ip, `traceparent`, ...). */
  metadata?: JsonObject;
  source?: string;
  subject?: string;
  aggregateType?: string;
  aggregateId?: string;
  /** When the fact happened; default: when the server accepts it. */
  time?: Date;
  correlationId?: string;
  causationId?: string;
  /** Events with the same key are the same event (published once). */
  idempotencyKey?: string;
  /** The producer's own id: with `source`, a redelivery of the same id is a duplicate. */
  id?: string;
}

/** A CloudEvents 1.0 event in its JSON form (structured mode). Extension attributes are
 * any other lowercase keys. */
export interface CloudEvent {
  specversion?: string;
  id: string;
  source: string;
  type: string;
  subject?: string;
  time?: string | Date;
  datacontenttype?: string;
  dataschema?: string;
  /** The payload; neoactions stores a JSON object. */
  data?: JsonValue;
  [extension: string]: JsonValue | Date | undefined;
}

/** CloudEvents extensions that are fields of a neoactions event; every other extension
 * (and `datacontenttype`, `dataschema`) travels in the event's metadata. `traceparent` and
 * `tracestate` there are the trace context handed on to the handlers. */
const EXTENSION_FIELDS: Record<string, keyof EventInput> = {
  correlationid: "correlationId",
  causationid: "causationId",
  aggregatetype: "aggregateType",
  aggregateid: "aggregateId",
  idempotencykey: "idempotencyKey",
};
const CORE_ATTRIBUTES = new Set(["specversion", "id", "source", "type", "subject", "time", "data", "data_base64"]);

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function encode(value: JsonValue | undefined, path: string): string {
  if (value === undefined) return "";
  if (!isObject(value)) throw InvalidArgument.field(path, "must be a JSON object", "INVALID_JSON");
  return JSON.stringify(value);
}

/** `input` as the protobuf message PublishEvent takes; `path` names it in errors. */
export function eventMessage(input: EventInput, path = "event"): Event {
  if (typeof input.type !== "string" || !input.type) {
    throw InvalidArgument.field(`${path}.type`, "an event needs a type");
  }
  if (input.time !== undefined && !(input.time instanceof Date && !Number.isNaN(input.time.getTime()))) {
    throw InvalidArgument.field(`${path}.time`, "must be a valid Date");
  }
  return create(EventSchema, {
    type: input.type,
    dataJson: encode(input.data ?? {}, `${path}.data`),
    metadataJson: input.metadata && Object.keys(input.metadata).length ? encode(input.metadata, `${path}.metadata`) : "",
    source: input.source ?? "",
    subject: input.subject ?? "",
    aggregateType: input.aggregateType ?? "",
    aggregateId: input.aggregateId ?? "",
    correlationId: input.correlationId ?? "",
    causationId: input.causationId ?? "",
    idempotencyKey: input.idempotencyKey ?? "",
    id: input.id ?? "",
    time: input.time ? timestampFromDate(input.time) : undefined,
  });
}

/** A CloudEvents 1.0 event as an {@link EventInput}: `id` + `source` deduplicate
 * redeliveries, known extensions become fields, the others go to `metadata`. */
export function fromCloudEvent(ce: CloudEvent, path = "event"): EventInput {
  if (ce.specversion !== undefined && ce.specversion !== "1.0") {
    throw InvalidArgument.field(`${path}.specversion`, `only CloudEvents 1.0 is supported, got ${JSON.stringify(ce.specversion)}`);
  }
  for (const key of ["id", "source", "type"] as const) {
    if (typeof ce[key] !== "string" || !ce[key]) {
      throw InvalidArgument.field(`${path}.${key}`, `a CloudEvent needs a non-empty '${key}'`);
    }
  }
  if (ce.data_base64 !== undefined) {
    throw InvalidArgument.field(`${path}.data_base64`, "binary data is not supported; send a JSON object as data");
  }
  if (ce.data !== undefined && !isObject(ce.data)) {
    throw InvalidArgument.field(`${path}.data`, "must be a JSON object");
  }
  const input: EventInput = { type: ce.type, id: ce.id, source: ce.source, data: ce.data ?? {} };
  if (ce.subject !== undefined) input.subject = ce.subject;
  if (ce.time !== undefined) {
    const time = ce.time instanceof Date ? ce.time : new Date(ce.time);
    if (Number.isNaN(time.getTime())) throw InvalidArgument.field(`${path}.time`, "must be an RFC 3339 time");
    input.time = time;
  }
  const metadata: JsonObject = {};
  for (const [key, value] of Object.entries(ce)) {
    if (CORE_ATTRIBUTES.has(key) || value === undefined) continue;
    const field = EXTENSION_FIELDS[key];
    if (field !== undefined) {
      if (typeof value !== "string") throw InvalidArgument.field(`${path}.${key}`, "must be a string");
      (input as unknown as Record<string, string>)[field] = value;
    } else {
      metadata[key] = value instanceof Date ? value.toISOString() : value;
    }
  }
  if (Object.keys(metadata).length) input.metadata = metadata;
  return input;
}
