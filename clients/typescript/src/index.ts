/**
 * The neoactions TypeScript client (Node.js, gRPC over HTTP/2).
 *
 * ```ts
 * import { NeoActionsClient } from "@neoactions/client";
 * const client = new NeoActionsClient({ target: "127.0.0.1:50051", tenant: "shop" });
 * const { event, executions } = await client.publish("orders.created", { amount: 120 });
 * ```
 */
export {
  ADMIN_TENANT,
  NeoActionsClient,
  allPages,
  parseJson,
  type ActionInput,
  type ApplyOutcome,
  type ApplyResult,
  type ApplySource,
  type CallOptions,
  type ClientOptions,
  type DeadLetterQuery,
  type ExecuteOptions,
  type ExecuteTarget,
  type Page,
  type PageOptions,
  type PublishOptions,
  type PublishResult,
  type WatchFilter,
} from "./client.js";
export { loadFile, parseAction, parseDocuments, parseYaml, type ActionDocument } from "./declarative.js";
export * from "./errors.js";
export { eventMessage, fromCloudEvent, type CloudEvent, type EventInput } from "./events.js";
export { API_KEY_ENV, DEFAULT_TARGET, SERVER_ENV, TLS_CA_ENV, DEFAULT_TIMEOUT_MS, type ConnectionOptions, type TlsOptions } from "./transport.js";
// the generated messages and enums the calls take and return
export * from "./gen/neoactions/v1/actions_pb.js";
export * from "./gen/neoactions/v1/events_pb.js";
export * from "./gen/neoactions/v1/executions_pb.js";
export * from "./gen/neoactions/v1/tenants_pb.js";
export * from "./gen/neoactions/v1/keys_pb.js";
