/**
 * The declarative actions file (`neoactions apply -f actions.yaml`), the same format the
 * Python client and the CLI read: one or more YAML documents, each `{actions: [...]}`.
 *
 * Every key is checked before anything is sent: an unknown key, a bad priority or a
 * malformed condition is refused with {@link InvalidArgument} (reason
 * `INVALID_ACTIONS_FILE`) naming the action and the key. Semantic checks (patterns,
 * operators, handler configs) are the server's, when the action is saved or dry-run.
 */
import { readFile } from "node:fs/promises";
import { fromJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { parseAllDocuments } from "yaml";
import { ActionSchema, type Action } from "./gen/neoactions/v1/actions_pb.js";
import { InvalidArgument, type FieldViolation } from "./errors.js";

/** One action of a declarative file, ready to send. */
export interface ActionDocument {
  /** The action's name inside its tenant. */
  name: string;
  /** The action as protobuf (`name` and output-only fields empty). */
  action: Action;
  /** `enabled` as written in the file; `undefined` when it does not say. */
  enabled?: boolean;
}

const ACTION_KEYS = new Set([
  "name",
  "description",
  "trigger",
  "handler",
  "priority",
  "execution_mode",
  "timeout_seconds",
  "retry_policy",
  "rate_limit",
  "max_concurrency",
  "tags",
  "enabled",
]);
const TRIGGER_KEYS = new Set(["event_types", "conditions", "context_filters"]);
const HANDLER_KEYS = new Set(["type", "config"]);
const RETRY_POLICY_KEYS = new Set(["max_retries", "backoff", "initial_delay_ms", "max_delay_ms", "jitter", "max_age_seconds"]);
const RATE_LIMIT_KEYS = new Set(["per_minute", "per_hour"]);
const FIELD_CONDITION_KEYS = new Set(["field", "operator", "value"]);
const CONDITION_FORMS = ["all", "any", "not", "cel"] as const;
const PRIORITIES = ["unspecified", "low", "normal", "high", "critical"];
const EXECUTION_MODES = ["sync", "async", "queued"];

type Mapping = { [key: string]: JsonValue };

function isMapping(value: unknown): value is Mapping {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (Array.isArray(value)) return "list";
  return typeof value === "object" ? "mapping" : typeof value;
}

function sorted(keys: Set<string>): string {
  return [...keys].sort().join(", ");
}

/** Walks one action mapping, collecting every problem with its path. */
class Checker {
  readonly violations: FieldViolation[] = [];
  constructor(private readonly label: string) {}

  add(path: string, description: string): void {
    this.violations.push({ field: path, description: `action ${this.label}: ${description}` });
  }

  mapping(value: unknown, path: string, what: string): Mapping | undefined {
    if (!isMapping(value)) {
      this.add(path, `${what} must be a mapping, got ${typeName(value)}`);
      return undefined;
    }
    return value;
  }

  keys(value: Mapping, allowed: Set<string>, path: string, where: string): void {
    for (const key of Object.keys(value)) {
      if (!allowed.has(key)) this.add(`${path}.${key}`, `unknown key '${key}' in ${where} (allowed: ${sorted(allowed)})`);
    }
  }

  condition(value: unknown, path: string): void {
    const cond = this.mapping(value, path, "a condition");
    if (cond === undefined) return;
    const forms: string[] = CONDITION_FORMS.filter((f) => f in cond);
    if (Object.keys(cond).some((k) => FIELD_CONDITION_KEYS.has(k))) forms.unshift("field");
    if (forms.length !== 1) {
      const got = forms.length ? ` (got ${forms.join(", ")})` : "";
      this.add(path, `a condition needs exactly one of {field, operator, value}, all, any, not, cel${got}`);
      return;
    }
    const form = forms[0] as string;
    if (form === "field") {
      this.keys(cond, FIELD_CONDITION_KEYS, path, "a condition");
      for (const key of ["field", "operator"]) {
        const v = cond[key];
        if (typeof v !== "string" || !v) this.add(`${path}.${key}`, `a condition needs a non-empty string '${key}'`);
      }
      return;
    }
    this.keys(cond, new Set([form]), path, `a '${form}' condition`);
    const inner = cond[form];
    if (form === "all" || form === "any") {
      if (!Array.isArray(inner) || inner.length === 0) {
        this.add(`${path}.${form}`, `'${form}' needs a non-empty list of conditions`);
        return;
      }
      inner.forEach((child, i) => this.condition(child, `${path}.${form}[${i}]`));
    } else if (form === "not") {
      this.condition(inner, `${path}.not`);
    } else if (typeof inner !== "string" || !inner.trim()) {
      this.add(`${path}.cel`, "'cel' needs a non-empty expression string");
    }
  }

  required(body: Mapping, key: string, path: string): Mapping | undefined {
    if (body[key] === undefined || body[key] === null) {
      this.add(`${path}.${key}`, `'${key}' is required`);
      return undefined;
    }
    return this.mapping(body[key], `${path}.${key}`, `'${key}'`);
  }

  choice(value: unknown, path: string, allowed: string[], enumPrefix: string): string | undefined {
    let text = typeof value === "string" ? value.trim().toLowerCase() : undefined;
    if (text !== undefined && text.startsWith(enumPrefix.toLowerCase())) text = text.slice(enumPrefix.length);
    if (text === undefined || !allowed.includes(text)) {
      const key = path.slice(path.lastIndexOf(".") + 1);
      this.add(path, `${key} must be one of ${allowed.join(", ")}, got ${JSON.stringify(value)}`);
      return undefined;
    }
    return `${enumPrefix}${text.toUpperCase()}`;
  }
}

function parseOne(doc: unknown, path: string): [FieldViolation[], ActionDocument | undefined] {
  const name = isMapping(doc) ? doc["name"] : undefined;
  const label = typeof name === "string" && name ? `'${name}'` : `at ${path}`;
  const check = new Checker(label);
  const action = check.mapping(doc, path, "an action");
  if (action === undefined) return [check.violations, undefined];
  check.keys(action, ACTION_KEYS, path, "an action");
  if (typeof name !== "string" || !name) check.add(`${path}.name`, "'name' is required and must be a non-empty string");

  const body: Mapping = {};
  for (const [key, value] of Object.entries(action)) if (ACTION_KEYS.has(key)) body[key] = value;
  delete body["name"];
  const enabled = body["enabled"];
  delete body["enabled"];
  if (enabled !== undefined && enabled !== null && typeof enabled !== "boolean") {
    check.add(`${path}.enabled`, `'enabled' must be true or false, got ${JSON.stringify(enabled)}`);
  }

  const trigger = check.required(body, "trigger", path);
  if (trigger !== undefined) {
    check.keys(trigger, TRIGGER_KEYS, `${path}.trigger`, "trigger");
    const types = trigger["event_types"];
    if (typeof types === "string") body["trigger"] = { ...trigger, event_types: [types] };
    else if (!Array.isArray(types) || types.length === 0) {
      check.add(`${path}.trigger.event_types`, "'event_types' needs at least one pattern");
    }
    const conditions = trigger["conditions"] ?? [];
    if (!Array.isArray(conditions)) check.add(`${path}.trigger.conditions`, "'conditions' must be a list");
    else conditions.forEach((c, i) => check.condition(c, `${path}.trigger.conditions[${i}]`));
    const filters = trigger["context_filters"];
    if (filters !== undefined && filters !== null) check.mapping(filters, `${path}.trigger.context_filters`, "'context_filters'");
  }

  const handler = check.required(body, "handler", path);
  if (handler !== undefined) {
    check.keys(handler, HANDLER_KEYS, `${path}.handler`, "handler");
    const type = handler["type"];
    if (typeof type !== "string" || !type) check.add(`${path}.handler.type`, "'type' is required (a handler type such as python)");
    if ("config" in handler) check.mapping(handler["config"], `${path}.handler.config`, "'config'");
  }

  for (const [key, allowed] of [
    ["retry_policy", RETRY_POLICY_KEYS],
    ["rate_limit", RATE_LIMIT_KEYS],
  ] as const) {
    if (key in body) {
      const sub = check.mapping(body[key], `${path}.${key}`, `'${key}'`);
      if (sub !== undefined) check.keys(sub, allowed, `${path}.${key}`, key);
    }
  }
  if ("priority" in body) {
    body["priority"] = check.choice(body["priority"], `${path}.priority`, PRIORITIES, "PRIORITY_") ?? null;
  }
  if ("execution_mode" in body) {
    body["execution_mode"] =
      check.choice(body["execution_mode"], `${path}.execution_mode`, EXECUTION_MODES, "EXECUTION_MODE_") ?? null;
  }
  const tags = body["tags"];
  if (tags !== undefined && (!Array.isArray(tags) || !tags.every((t) => typeof t === "string"))) {
    check.add(`${path}.tags`, "'tags' must be a list of strings");
  }
  if (check.violations.length) return [check.violations, undefined];
  let message: Action;
  try {
    message = fromJson(ActionSchema, body as JsonObject);
  } catch (err) {
    check.add(path, `invalid value: ${err instanceof Error ? err.message : String(err)}`);
    return [check.violations, undefined];
  }
  const parsed: ActionDocument = { name: name as string, action: message };
  if (typeof enabled === "boolean") parsed.enabled = enabled;
  return [[], parsed];
}

function invalid(violations: FieldViolation[], prefix = ""): InvalidArgument {
  const first = violations[0] as FieldViolation;
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : "";
  const description = first.description.startsWith(prefix) ? first.description.slice(prefix.length) : first.description;
  return new InvalidArgument(`invalid actions file: ${prefix}${first.field}: ${description}${more}`, {
    reason: "INVALID_ACTIONS_FILE",
    violations,
  });
}

/** One action in the YAML form (a mapping) → {@link ActionDocument}; throws
 * {@link InvalidArgument} listing every problem found. */
export function parseAction(doc: unknown, path = "action"): ActionDocument {
  const [violations, parsed] = parseOne(doc, path);
  if (violations.length || parsed === undefined) throw invalid(violations);
  return parsed;
}

/** Parsed YAML documents (each `{actions: [...]}`) → their actions, in order. */
export function parseDocuments(docs: unknown[], source = ""): ActionDocument[] {
  const violations: FieldViolation[] = [];
  const out: ActionDocument[] = [];
  const seen = new Map<string, string>();
  const prefix = source ? `${source}: ` : "";
  docs.forEach((doc, d) => {
    if (doc === null || doc === undefined) return;
    const where = d === 0 ? "actions" : `documents[${d}].actions`;
    if (!isMapping(doc) || !("actions" in doc)) {
      violations.push({ field: `documents[${d}]`, description: `${prefix}expected a mapping with an 'actions:' list` });
      return;
    }
    for (const key of Object.keys(doc)) {
      if (key !== "actions") {
        violations.push({ field: `documents[${d}].${key}`, description: `${prefix}unknown top-level key '${key}' (allowed: actions)` });
      }
    }
    const actions = doc["actions"];
    if (!Array.isArray(actions)) {
      violations.push({ field: where, description: `${prefix}'actions' must be a list` });
      return;
    }
    actions.forEach((item, i) => {
      const path = `${where}[${i}]`;
      const [problems, parsed] = parseOne(item, path);
      violations.push(...problems);
      if (parsed === undefined) return;
      const first = seen.get(parsed.name);
      if (first !== undefined) {
        violations.push({ field: `${path}.name`, description: `action '${parsed.name}': defined twice (first at ${first})` });
        return;
      }
      seen.set(parsed.name, path);
      out.push(parsed);
    });
  });
  if (violations.length) throw invalid(violations, prefix);
  return out;
}

/** YAML text (one or more `---` documents) → its actions. */
export function parseYaml(text: string, source = ""): ActionDocument[] {
  const docs = parseAllDocuments(text);
  const list = Array.isArray(docs) ? docs : [docs];
  for (const doc of list) {
    const error = doc.errors[0];
    if (error !== undefined) {
      const where = source ? `${source}: ` : "";
      throw InvalidArgument.field("file", `${where}not valid YAML: ${error.message}`, "MALFORMED_YAML");
    }
  }
  return parseDocuments(
    list.map((doc) => doc.toJS() as unknown),
    source,
  );
}

/** Read and parse a declarative file. */
export async function loadFile(path: string): Promise<ActionDocument[]> {
  return parseYaml(await readFile(path, "utf8"), path);
}
