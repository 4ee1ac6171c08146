/**
 * `NeoActionsClient`: the neoactions API over gRPC, returning the generated messages and
 * throwing the typed errors of `errors.ts`. The same calls as the Python `AsyncClient`.
 */
import { create, equals, type JsonValue, type MessageInitShape } from "@bufbuild/protobuf";
import { FieldMaskSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createClient, type Client as ServiceClient } from "@connectrpc/connect";
import type { Http2SessionManager } from "@connectrpc/connect-node";
import {
  ActionSchema,
  ActionService,
  type Action,
  type ActionTestResult,
  HandlerSchema,
  type ListActionsRequestSchema,
} from "./gen/neoactions/v1/actions_pb.js";
import {
  EventService,
  type Event,
  type EventStatus,
  type PublishEventResponse,
} from "./gen/neoactions/v1/events_pb.js";
import {
  DeadLetterFilterSchema,
  ExecutionService,
  type Execution,
  type ExecutionStatus,
  type ExecutionUpdate,
  InlineActionSchema,
} from "./gen/neoactions/v1/executions_pb.js";
import { ApiKeyService, type ApiKey } from "./gen/neoactions/v1/keys_pb.js";
import { TenantService, type Tenant } from "./gen/neoactions/v1/tenants_pb.js";
import { loadFile, parseAction, parseDocuments, type ActionDocument } from "./declarative.js";
import { FailedPrecondition, Internal, InvalidArgument, NotFound, translate, type FieldViolation, type NeoActionsError } from "./errors.js";
import { eventMessage, fromCloudEvent, type CloudEvent, type EventInput } from "./events.js";
import { DEFAULT_TIMEOUT_MS, openTransport, type ConnectionOptions } from "./transport.js";

/** The platform tenant. */
export const ADMIN_TENANT = "admin";

export interface ClientOptions extends ConnectionOptions {
  /** The tenant every call acts in unless a call names another; default `admin`. */
  tenant?: string;
  /** Deadline of each unary call in milliseconds (default 60 000; 0: none). Streams have
   * none unless the call sets `timeoutMs`. */
  timeoutMs?: number;
}

/** What every call takes besides its own arguments. */
export interface CallOptions {
  tenant?: string;
  /** This call's deadline in milliseconds (0: none). */
  timeoutMs?: number;
  /** Cancels the call (a stream ends with {@link Cancelled}). */
  signal?: AbortSignal;
  /** Extra metadata for this call: `traceparent`, `x-request-id`, ... */
  headers?: Record<string, string>;
}

export interface PublishOptions extends CallOptions {
  /** Return once the matched `sync` actions have finished, with their results. */
  wait?: boolean;
  /** Idempotency of the call itself (the event's idempotency key when it has none). */
  requestId?: string;
}

export interface PublishResult {
  event: Event;
  /** The executions the event matched, in priority order (final for `sync` with `wait`). */
  executions: Execution[];
  /** The event was accepted before (same idempotency key, or CloudEvents source + id). */
  duplicate: boolean;
}

export interface Page<T> {
  items: T[];
  /** Pass as `pageToken` for the next page; empty on the last one. */
  nextPageToken: string;
}

export interface PageOptions extends CallOptions {
  pageSize?: number;
  pageToken?: string;
}

/** An action: an {@link ActionDocument}, or a mapping in the YAML form of the actions file. */
export type ActionInput = ActionDocument | Record<string, unknown>;

/** What `execute` runs: a stored action's name, or an inline handler. */
export type ExecuteTarget = string | { type: string; config?: Record<string, JsonValue>; timeoutSeconds?: number };

export interface ExecuteOptions extends CallOptions {
  correlationId?: string;
  idempotencyKey?: string;
  requestId?: string;
}

export interface WatchFilter extends CallOptions {
  action?: string;
  eventId?: string;
  correlationId?: string;
  executionId?: string;
  /** Continue after the update that carried this token (`update.resumeToken`). */
  resumeToken?: string;
}

export interface DeadLetterQuery {
  action?: string;
  /** The last error's type (`timeout`, `ValueError`, `http_503`, ...). */
  errorType?: string;
  /** On the execution's create time: `[startTime, endTime)`. */
  startTime?: Date;
  endTime?: Date;
}

export type ApplyOutcome = "created" | "updated" | "unchanged";

export interface ApplyResult {
  name: string;
  outcome: ApplyOutcome;
  /** The action as stored (with `dryRun`: as it would be). */
  action: Action;
  dryRun: boolean;
  /** The fields that differ from the stored action (`enabled` included). */
  changed: string[];
}

/** What `apply` takes: a file path, a parsed `{actions: [...]}` mapping, or actions. */
export type ApplySource = string | { actions: unknown[] } | ActionInput[];

/** The spec fields of an action (what a new version changes); the rest is output only. */
const SPEC_FIELDS = [
  "description",
  "trigger",
  "handler",
  "priority",
  "executionMode",
  "timeoutSeconds",
  "retryPolicy",
  "rateLimit",
  "maxConcurrency",
  "tags",
] as const;

const FIELD_NAMES: Record<(typeof SPEC_FIELDS)[number], string> = {
  description: "description",
  trigger: "trigger",
  handler: "handler",
  priority: "priority",
  executionMode: "execution_mode",
  timeoutSeconds: "timeout_seconds",
  retryPolicy: "retry_policy",
  rateLimit: "rate_limit",
  maxConcurrency: "max_concurrency",
  tags: "tags",
};

function changedFields(want: Action, have: Action): string[] {
  return SPEC_FIELDS.filter((field) => {
    const a = create(ActionSchema, { [field]: want[field] });
    const b = create(ActionSchema, { [field]: have[field] });
    return !equals(ActionSchema, a, b);
  }).map((field) => FIELD_NAMES[field]);
}

function isDocument(value: ActionInput): value is ActionDocument {
  const action = (value as { action?: { $typeName?: string } }).action;
  return typeof value.name === "string" && action?.$typeName === "neoactions.v1.Action";
}

/** The JSON a `...Json` field holds (`execution.outputJson`, `event.dataJson`); `null` for "". */
export function parseJson(text: string): JsonValue {
  return text ? (JSON.parse(text) as JsonValue) : null;
}

/** The neoactions API. `close()` when done (or let an idle connection be: it does not
 * keep the process alive). */
export class NeoActionsClient {
  readonly tenant: string;
  readonly timeoutMs: number;
  private readonly session: Http2SessionManager;
  private readonly events: ServiceClient<typeof EventService>;
  private readonly actions: ServiceClient<typeof ActionService>;
  private readonly executions: ServiceClient<typeof ExecutionService>;
  private readonly tenants: ServiceClient<typeof TenantService>;
  private readonly keys: ServiceClient<typeof ApiKeyService>;

  constructor(options: ClientOptions = {}) {
    this.tenant = options.tenant ?? ADMIN_TENANT;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const { transport, session } = openTransport(options);
    this.session = session;
    this.events = createClient(EventService, transport);
    this.actions = createClient(ActionService, transport);
    this.executions = createClient(ExecutionService, transport);
    this.tenants = createClient(TenantService, transport);
    this.keys = createClient(ApiKeyService, transport);
  }

  /** Close the connection; calls still open end with an error. */
  close(): void {
    this.session.abort();
  }

  private parent(options: CallOptions | undefined): string {
    return `tenants/${options?.tenant || this.tenant}`;
  }

  private child(kind: string, id: string, options: CallOptions | undefined): string {
    return id.startsWith("tenants/") ? id : `${this.parent(options)}/${kind}/${id}`;
  }

  private opts(options: CallOptions | undefined, streaming = false): { timeoutMs?: number; signal?: AbortSignal; headers?: Record<string, string> } {
    const timeoutMs = options?.timeoutMs ?? (streaming ? 0 : this.timeoutMs);
    const out: { timeoutMs?: number; signal?: AbortSignal; headers?: Record<string, string> } = {};
    if (timeoutMs > 0) out.timeoutMs = timeoutMs;
    if (options?.signal) out.signal = options.signal;
    if (options?.headers) out.headers = options.headers;
    return out;
  }

  private async call<T>(run: () => Promise<T>, options?: CallOptions): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw translate(err, options?.signal);
    }
  }

  private async *stream<T>(start: (signal: AbortSignal) => AsyncIterable<T>, options: CallOptions | undefined): AsyncGenerator<T> {
    const controller = new AbortController();
    const outer = options?.signal;
    const onAbort = (): void => controller.abort(outer?.reason);
    if (outer?.aborted) onAbort();
    outer?.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const item of start(controller.signal)) yield item;
    } catch (err) {
      throw translate(err, outer);
    } finally {
      outer?.removeEventListener("abort", onAbort);
      controller.abort(); // left early: end the call on the server too
    }
  }

  // --- events ------------------------------------------------------------------

  /** Publish one event; with `wait` the matched `sync` actions' results come back final. */
  publish(type: string, data: Record<string, JsonValue> = {}, options: PublishOptions & Omit<EventInput, "type" | "data"> = {}): Promise<PublishResult> {
    const { tenant, timeoutMs, signal, headers, wait, requestId, ...fields } = options;
    return this.publishEvent({ ...fields, type, data }, { tenant, timeoutMs, signal, headers, wait, requestId });
  }

  /** Publish one event given as an {@link EventInput}. */
  async publishEvent(event: EventInput, options: PublishOptions = {}): Promise<PublishResult> {
    const request = { parent: this.parent(options), event: eventMessage(event), wait: options.wait ?? false, requestId: options.requestId ?? "" };
    return publishResult(await this.call(() => this.events.publishEvent(request, this.opts(options)), options));
  }

  /** Publish a batch of events of one tenant in one call (one transaction on the server). */
  async publishMany(events: EventInput[], options: CallOptions = {}): Promise<PublishResult[]> {
    const messages = events.map((e, i) => eventMessage(e, `events[${i}]`));
    const response = await this.call(() => this.events.publishEvents({ parent: this.parent(options), events: messages }, this.opts(options)), options);
    return response.results.map(publishResult);
  }

  /** Publish a CloudEvents 1.0 event (JSON form): its `source` + `id` deduplicate redeliveries. */
  publishCloudEvent(event: CloudEvent, options: PublishOptions = {}): Promise<PublishResult> {
    return this.publishEvent(fromCloudEvent(event), options);
  }

  /** Publish a batch of CloudEvents in one call. */
  publishCloudEvents(events: CloudEvent[], options: CallOptions = {}): Promise<PublishResult[]> {
    return this.publishMany(
      events.map((e, i) => fromCloudEvent(e, `events[${i}]`)),
      options,
    );
  }

  async getEvent(eventId: string, options: CallOptions = {}): Promise<Event> {
    return this.call(() => this.events.getEvent({ name: this.child("events", eventId, options) }, this.opts(options)), options);
  }

  /** One page of the events matching the filters. */
  async listEvents(
    filter: PageOptions & { typePattern?: string; correlationId?: string; status?: EventStatus; startTime?: Date; endTime?: Date } = {},
  ): Promise<Page<Event>> {
    const request = {
      parent: this.parent(filter),
      pageSize: filter.pageSize ?? 0,
      pageToken: filter.pageToken ?? "",
      typePattern: filter.typePattern ?? "",
      correlationId: filter.correlationId ?? "",
      status: filter.status ?? 0,
      startTime: filter.startTime ? timestampFromDate(filter.startTime) : undefined,
      endTime: filter.endTime ? timestampFromDate(filter.endTime) : undefined,
    };
    const response = await this.call(() => this.events.listEvents(request, this.opts(filter)), filter);
    return { items: response.events, nextPageToken: response.nextPageToken };
  }

  // --- actions -----------------------------------------------------------------

  /** Create an action (a mapping in the YAML form, or a parsed {@link ActionDocument}). */
  async createAction(action: ActionInput, options: CallOptions & { validateOnly?: boolean } = {}): Promise<Action> {
    const doc = isDocument(action) ? action : parseAction(action);
    const request = { parent: this.parent(options), actionId: doc.name, action: doc.action, validateOnly: options.validateOnly ?? false };
    return this.call(() => this.actions.createAction(request, this.opts(options)), options);
  }

  /** The current version of an action, or an exact `version`. */
  async getAction(name: string, options: CallOptions & { version?: number } = {}): Promise<Action> {
    const request = { name: this.child("actions", name, options), version: BigInt(options.version ?? 0) };
    return this.call(() => this.actions.getAction(request, this.opts(options)), options);
  }

  /** One page of the tenant's actions, by name; every filter given must hold. */
  async listActions(
    filter: PageOptions & { enabled?: boolean; handlerType?: string; tag?: string; search?: string } = {},
  ): Promise<Page<Action>> {
    const request: MessageInitShape<typeof ListActionsRequestSchema> = {
      parent: this.parent(filter),
      pageSize: filter.pageSize ?? 0,
      pageToken: filter.pageToken ?? "",
      handlerType: filter.handlerType ?? "",
      tag: filter.tag ?? "",
      search: filter.search ?? "",
    };
    if (filter.enabled !== undefined) request.enabled = filter.enabled;
    const response = await this.call(() => this.actions.listActions(request, this.opts(filter)), filter);
    return { items: response.actions, nextPageToken: response.nextPageToken };
  }

  /** Save a new version. `updateMask` limits the fields replaced (default: all);
   * `expectedVersion` makes the update fail with {@link Aborted} if someone else won. */
  async updateAction(
    action: ActionInput,
    options: CallOptions & { updateMask?: string[]; expectedVersion?: number | bigint; validateOnly?: boolean } = {},
  ): Promise<Action> {
    const doc = isDocument(action) ? action : parseAction(action);
    const message = create(ActionSchema, { ...doc.action, name: this.child("actions", doc.name, options) });
    const request = {
      action: message,
      updateMask: create(FieldMaskSchema, { paths: options.updateMask ?? [] }),
      expectedVersion: BigInt(options.expectedVersion ?? 0),
      validateOnly: options.validateOnly ?? false,
    };
    return this.call(() => this.actions.updateAction(request, this.opts(options)), options);
  }

  async deleteAction(name: string, options: CallOptions = {}): Promise<void> {
    await this.call(() => this.actions.deleteAction({ name: this.child("actions", name, options) }, this.opts(options)), options);
  }

  async enableAction(name: string, options: CallOptions = {}): Promise<Action> {
    return this.call(() => this.actions.enableAction({ name: this.child("actions", name, options) }, this.opts(options)), options);
  }

  async disableAction(name: string, options: CallOptions = {}): Promise<Action> {
    return this.call(() => this.actions.disableAction({ name: this.child("actions", name, options) }, this.opts(options)), options);
  }

  /**
   * Create or update every declared action by name, like `kubectl apply`: per action
   * `created`, `updated` or `unchanged`. `enabled: false` in the file leaves the action
   * disabled. All or nothing: every change is dry-run first; if the server refuses any,
   * nothing is saved and one {@link InvalidArgument} names each failing action and field.
   */
  async apply(source: ApplySource, options: CallOptions & { dryRun?: boolean } = {}): Promise<ApplyResult[]> {
    const docs = await documents(source);
    const steps: { doc: ActionDocument; current?: Action; checked: Action; changed: string[]; toggle?: boolean }[] = [];
    const failures: [number, string, NeoActionsError][] = [];
    for (const [index, doc] of docs.entries()) {
      let current: Action | undefined;
      try {
        current = await this.getAction(doc.name, options);
      } catch (err) {
        if (!(err instanceof NotFound)) throw err;
      }
      try {
        if (current === undefined) {
          const checked = await this.createAction(doc, { ...options, validateOnly: true });
          const step: (typeof steps)[number] = { doc, checked, changed: [] };
          if (doc.enabled === false) step.toggle = false;
          steps.push(step);
        } else {
          const checked = await this.updateAction(doc, { ...options, expectedVersion: current.version, validateOnly: true });
          const changed = changedFields(checked, current);
          const step: (typeof steps)[number] = { doc, current, checked, changed };
          if (doc.enabled !== undefined && doc.enabled !== current.enabled) {
            step.toggle = doc.enabled;
            changed.push("enabled");
          }
          steps.push(step);
        }
      } catch (err) {
        if (err instanceof InvalidArgument || err instanceof FailedPrecondition) failures.push([index, doc.name, err]);
        else throw err;
      }
    }
    if (failures.length) throw refused(failures);
    const results: ApplyResult[] = [];
    for (const step of steps) {
      const outcome: ApplyOutcome = step.current === undefined ? "created" : step.changed.length ? "updated" : "unchanged";
      if (options.dryRun) {
        results.push({ name: step.doc.name, outcome, action: step.current && !step.changed.length ? step.current : step.checked, dryRun: true, changed: step.changed });
        continue;
      }
      let action: Action;
      if (step.current === undefined) action = await this.createAction(step.doc, options);
      else if (step.changed.some((c) => c !== "enabled")) {
        action = await this.updateAction(step.doc, { ...options, expectedVersion: step.current.version });
      } else action = step.current;
      if (step.toggle !== undefined) {
        action = step.toggle ? await this.enableAction(step.doc.name, options) : await this.disableAction(step.doc.name, options);
      }
      results.push({ name: step.doc.name, outcome, action, dryRun: false, changed: step.changed });
    }
    return results;
  }

  /** Explain which actions an event would trigger and why (each pattern and condition with
   * the value it saw); with `execute`, the matched ones run for real. */
  async testEvent(
    type: string,
    data: Record<string, JsonValue> = {},
    options: CallOptions & { metadata?: Record<string, JsonValue>; source?: string; action?: string; execute?: boolean } = {},
  ): Promise<ActionTestResult[]> {
    const request = {
      parent: this.parent(options),
      event: { type, source: options.source ?? "", dataJson: JSON.stringify(data), metadataJson: options.metadata ? JSON.stringify(options.metadata) : "" },
      action: options.action ?? "",
      execute: options.execute ?? false,
    };
    const response = await this.call(() => this.actions.testAction(request, this.opts(options)), options);
    return response.results;
  }

  // --- executions --------------------------------------------------------------

  /**
   * Run an action (by name, or an inline handler `{type, config}`) with `input` and
   * stream its updates until it ends. `timeoutMs` is the deadline of the whole stream
   * (none by default); an inline handler's own limit is its `timeoutSeconds`.
   */
  execute(target: ExecuteTarget, input: JsonValue = {}, options: ExecuteOptions = {}): AsyncGenerator<ExecutionUpdate> {
    const request = {
      parent: this.parent(options),
      target:
        typeof target === "string"
          ? { case: "action" as const, value: target }
          : {
              case: "inline" as const,
              value: create(InlineActionSchema, {
                handler: create(HandlerSchema, { type: target.type, config: target.config ?? {} }),
                timeoutSeconds: target.timeoutSeconds ?? 0,
              }),
            },
      inputJson: JSON.stringify(input),
      correlationId: options.correlationId ?? "",
      idempotencyKey: options.idempotencyKey ?? "",
      requestId: options.requestId ?? "",
    };
    return this.stream((signal) => this.executions.execute(request, { ...this.opts(options, true), signal }), options);
  }

  /** `execute` to the end, then the final {@link Execution} (attempts included). */
  async run(target: ExecuteTarget, input: JsonValue = {}, options: ExecuteOptions = {}): Promise<Execution> {
    let executionId = "";
    for await (const update of this.execute(target, input, options)) executionId = update.executionId || executionId;
    if (!executionId) throw new Internal("the Execute stream ended without naming its execution", { reason: "STREAM_ENDED" });
    return this.getExecution(executionId, options);
  }

  async getExecution(executionId: string, options: CallOptions = {}): Promise<Execution> {
    return this.call(() => this.executions.getExecution({ name: this.child("executions", executionId, options) }, this.opts(options)), options);
  }

  /** One page of executions matching the filters. */
  async listExecutions(
    filter: PageOptions & { action?: string; status?: ExecutionStatus; eventId?: string; correlationId?: string; startTime?: Date; endTime?: Date } = {},
  ): Promise<Page<Execution>> {
    const request = {
      parent: this.parent(filter),
      pageSize: filter.pageSize ?? 0,
      pageToken: filter.pageToken ?? "",
      action: filter.action ?? "",
      status: filter.status ?? 0,
      eventId: filter.eventId ?? "",
      correlationId: filter.correlationId ?? "",
      startTime: filter.startTime ? timestampFromDate(filter.startTime) : undefined,
      endTime: filter.endTime ? timestampFromDate(filter.endTime) : undefined,
    };
    const response = await this.call(() => this.executions.listExecutions(request, this.opts(filter)), filter);
    return { items: response.executions, nextPageToken: response.nextPageToken };
  }

  /**
   * Every update matching the filters as it happens; the stream does not end by itself
   * (`break`, an `AbortSignal` or `timeoutMs` ends it). Each update carries
   * `resumeToken`: pass it back as `resumeToken` to continue right after it.
   */
  watchExecutions(filter: WatchFilter = {}): AsyncGenerator<ExecutionUpdate> {
    const request = {
      parent: this.parent(filter),
      action: filter.action ?? "",
      eventId: filter.eventId ?? "",
      correlationId: filter.correlationId ?? "",
      executionId: filter.executionId ?? "",
      resumeToken: filter.resumeToken ?? "",
    };
    return this.stream((signal) => this.executions.watchExecutions(request, { ...this.opts(filter, true), signal }), filter);
  }

  /** Cancel an unfinished execution ({@link FailedPrecondition} `EXECUTION_FINISHED` if it ended). */
  async cancelExecution(executionId: string, reason = "", options: CallOptions = {}): Promise<Execution> {
    const request = { name: this.child("executions", executionId, options), reason };
    return this.call(() => this.executions.cancelExecution(request, this.opts(options)), options);
  }

  /** A new attempt series of a failed, timed-out, cancelled or dead-lettered execution. */
  async retryExecution(executionId: string, options: CallOptions = {}): Promise<Execution> {
    return this.call(() => this.executions.retryExecution({ name: this.child("executions", executionId, options) }, this.opts(options)), options);
  }

  /** One page of the dead-letter queue, newest first. */
  async listDeadLetters(filter: PageOptions & DeadLetterQuery = {}): Promise<Page<Execution>> {
    const request = { parent: this.parent(filter), pageSize: filter.pageSize ?? 0, pageToken: filter.pageToken ?? "", filter: deadLetterFilter(filter) };
    const response = await this.call(() => this.executions.listDeadLetters(request, this.opts(filter)), filter);
    return { items: response.executions, nextPageToken: response.nextPageToken };
  }

  /** Requeue every dead letter matching the filter (each as `retryExecution` does); how many. */
  async requeueDeadLetters(filter: CallOptions & DeadLetterQuery = {}): Promise<number> {
    const request = { parent: this.parent(filter), filter: deadLetterFilter(filter) };
    const response = await this.call(() => this.executions.requeueDeadLetters(request, this.opts(filter)), filter);
    return Number(response.requeuedCount);
  }

  // --- tenants -----------------------------------------------------------------

  /** Create a tenant (`[a-z][a-z0-9_]{0,40}`); admin only. */
  async createTenant(slug: string, displayName = "", options: CallOptions = {}): Promise<Tenant> {
    return this.call(() => this.tenants.createTenant({ tenantId: slug, tenant: { displayName } }, this.opts(options)), options);
  }

  async listTenants(options: PageOptions = {}): Promise<Page<Tenant>> {
    const request = { pageSize: options.pageSize ?? 0, pageToken: options.pageToken ?? "" };
    const response = await this.call(() => this.tenants.listTenants(request, this.opts(options)), options);
    return { items: response.tenants, nextPageToken: response.nextPageToken };
  }

  /** Remove a tenant, everything it holds and its API keys (an admin of `admin` only). */
  async deleteTenant(slug: string, options: CallOptions = {}): Promise<void> {
    await this.call(() => this.tenants.deleteTenant({ name: `tenants/${slug}` }, this.opts(options)), options);
  }

  // --- API keys ----------------------------------------------------------------

  /**
   * Create an API key with a role (`admin`, `writer`, `reader`, `publisher`) in the tenant.
   * The returned `key` is the bearer token: shown only here, the server keeps its hash.
   */
  async createApiKey(
    role: string,
    options: CallOptions & { displayName?: string; ttlSeconds?: number; publishRate?: number } = {},
  ): Promise<{ apiKey: ApiKey; key: string }> {
    const request = {
      parent: this.parent(options),
      role,
      displayName: options.displayName ?? "",
      ttl: options.ttlSeconds ? { seconds: BigInt(Math.floor(options.ttlSeconds)), nanos: 0 } : undefined,
      publishRate: options.publishRate ?? 0,
    };
    const response = await this.call(() => this.keys.createApiKey(request, this.opts(options)), options);
    if (response.apiKey === undefined) throw new Internal("the server answered CreateApiKey without the key", { reason: "MALFORMED_RESPONSE" });
    return { apiKey: response.apiKey, key: response.key };
  }

  async listApiKeys(options: PageOptions = {}): Promise<Page<ApiKey>> {
    const request = { parent: this.parent(options), pageSize: options.pageSize ?? 0, pageToken: options.pageToken ?? "" };
    const response = await this.call(() => this.keys.listApiKeys(request, this.opts(options)), options);
    return { items: response.apiKeys, nextPageToken: response.nextPageToken };
  }

  /** Revoke a key (its id or `tenants/{t}/apiKeys/{id}`); revoking twice is not an error. */
  async revokeApiKey(key: string, options: CallOptions = {}): Promise<ApiKey> {
    return this.call(() => this.keys.revokeApiKey({ name: this.child("apiKeys", key, options) }, this.opts(options)), options);
  }
}

/** Every item of a listing, page after page: `for await (const a of allPages((t) => client.listActions({pageToken: t})))`. */
export async function* allPages<T>(fetch: (pageToken: string) => Promise<Page<T>>): AsyncGenerator<T> {
  let token = "";
  do {
    const page = await fetch(token);
    yield* page.items;
    token = page.nextPageToken;
  } while (token);
}

function publishResult(response: PublishEventResponse): PublishResult {
  if (response.event === undefined) throw new Internal("the server answered a publish without its event", { reason: "MALFORMED_RESPONSE" });
  return { event: response.event, executions: response.executions, duplicate: response.duplicate };
}

function deadLetterFilter(filter: DeadLetterQuery) {
  return create(DeadLetterFilterSchema, {
    action: filter.action ?? "",
    errorType: filter.errorType ?? "",
    startTime: filter.startTime ? timestampFromDate(filter.startTime) : undefined,
    endTime: filter.endTime ? timestampFromDate(filter.endTime) : undefined,
  });
}

async function documents(source: ApplySource): Promise<ActionDocument[]> {
  if (typeof source === "string") return loadFile(source);
  if (Array.isArray(source)) return source.map((d, i) => (isDocument(d) ? d : parseAction(d, `actions[${i}]`)));
  return parseDocuments([source]);
}

/** One error for the declared actions the server refused: each action and field; nothing saved. */
function refused(failures: [number, string, NeoActionsError][]): InvalidArgument {
  const violations: FieldViolation[] = [];
  const said: string[] = [];
  for (const [index, name, err] of failures) {
    const where = `actions[${index}]`;
    let found = err.violations.map((v) => ({ field: `${where}.${v.field}`, description: v.description }));
    if (!found.length) found = [{ field: where, description: err.message }];
    violations.push(...found);
    const first = found[0] as FieldViolation;
    said.push(`action '${name}': ${first.field}: ${first.description}`);
  }
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
  const reason = failures.length === 1 ? (failures[0] as [number, string, NeoActionsError])[2].reason : "INVALID_ACTIONS_FILE";
  return new InvalidArgument(`nothing applied: ${said[0] ?? ""}${more}`, { reason, violations });
}

