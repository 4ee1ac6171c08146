/**
 * The TypeScript client end to end against a real neoactions server (embedded store):
 * apply a YAML file, publish, watch the fan-out, read the stored results; typed errors;
 * dead letters; CloudEvents; deadlines.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  DeadlineExceeded,
  ExecutionStatus,
  FailedPrecondition,
  ExecutionUpdate_Kind as Kind,
  InvalidArgument,
  NotFound,
  Unavailable,
  parseJson,
  type ExecutionUpdate,
  type NeoActionsClient,
} from "../src/index.js";
import { startServer, tenantName, type Server } from "./harness.js";
import { LiveWatch } from "./watch.js";

const FINAL = new Set([Kind.SUCCEEDED, Kind.FAILED, Kind.TIMED_OUT, Kind.CANCELLED, Kind.DEAD_LETTERED]);

const ACTIONS_YAML = `
actions:
  - name: big-order-alert
    description: tell ops about big orders
    trigger:
      event_types: ["orders.created"]
      conditions:
        - {field: data.amount, operator: gt, value: 100}
    handler:
      type: python
      config: {function: "shop.handlers:alert", channel: ops}
    priority: high
    tags: [orders]
  - name: every-order
    trigger:
      event_types: ["orders.*"]
    handler:
      type: python
      config: {function: "shop.handlers:quick"}
`;

let server: Server;
let client: NeoActionsClient;
let dir: string;

before(async () => {
  server = await startServer();
  const tenant = tenantName("ts");
  await server.client().createTenant(tenant, "TypeScript client tests");
  client = server.client({ tenant });
  dir = mkdtempSync(join(tmpdir(), "neoactions-ts-apply-"));
});

after(async () => {
  await server?.stop();
});

function finals(updates: ExecutionUpdate[]): ExecutionUpdate[] {
  return updates.filter((u) => FINAL.has(u.kind));
}

describe("publish, fan-out, stored results", () => {
  test("apply creates the file's actions, and a second apply changes nothing", async () => {
    const file = join(dir, "actions.yaml");
    writeFileSync(file, ACTIONS_YAML);
    const first = await client.apply(file);
    assert.deepEqual(
      first.map((r) => [r.name, r.outcome]),
      [
        ["big-order-alert", "created"],
        ["every-order", "created"],
      ],
    );
    const again = await client.apply(file);
    assert.deepEqual(
      again.map((r) => r.outcome),
      ["unchanged", "unchanged"],
    );
    const stored = await client.getAction("big-order-alert");
    assert.equal(stored.description, "tell ops about big orders");
    assert.deepEqual(stored.tags, ["orders"]);

    writeFileSync(file, ACTIONS_YAML.replace("tell ops about big orders", "tell sales").replace("shop.handlers:quick\"}", "shop.handlers:quick\"}\n    enabled: false"));
    const dry = await client.apply(file, { dryRun: true });
    assert.deepEqual(
      dry.map((r) => [r.outcome, r.changed]),
      [
        ["updated", ["description"]],
        ["updated", ["enabled"]],
      ],
    );
    assert.equal((await client.getAction("big-order-alert")).description, "tell ops about big orders", "a dry run stores nothing");
    const applied = await client.apply(file);
    assert.equal(applied[0]?.action.description, "tell sales");
    assert.equal(applied[0]?.action.version, stored.version + 1n);
    assert.equal(applied[1]?.action.enabled, false);
    await client.enableAction("every-order");
  });

  test("an event fans out to both actions; the watch sees each run end and the store holds the results", async () => {
    const correlationId = `fanout-${Date.now()}`;
    const watch = new LiveWatch(client, correlationId);
    try {
      await watch.ready();
      const published = await client.publish("orders.created", { order_id: "o-1", amount: 250 }, { correlationId });
      assert.equal(published.duplicate, false);
      assert.equal(published.executions.length, 2);
      assert.equal(published.executions[0]?.action.endsWith("/actions/big-order-alert"), true, "priority high first");

      const updates = await watch.collect((got) => finals(got).length === 2);
      const ended = finals(updates);
      assert.deepEqual(
        ended.map((u) => u.kind),
        [Kind.SUCCEEDED, Kind.SUCCEEDED],
      );
      assert.ok(updates.every((u) => u.resumeToken), "every update carries a resume token");
      assert.ok(updates.some((u) => u.kind === Kind.EVENT_ACCEPTED && u.eventId === published.event.id));

      const alert = ended.find((u) => u.action.endsWith("/big-order-alert"));
      assert.ok(alert);
      const execution = await client.getExecution(alert.executionId);
      assert.equal(execution.status, ExecutionStatus.SUCCEEDED);
      assert.equal(execution.eventId, published.event.id);
      const output = parseJson(execution.outputJson) as Record<string, unknown>;
      assert.equal(output["alerted"], true);
      assert.equal(output["amount"], 250);
      assert.equal(output["channel"], "ops");

      const event = await client.getEvent(published.event.id);
      assert.deepEqual(parseJson(event.dataJson), { order_id: "o-1", amount: 250 });
      const listed = await client.listExecutions({ eventId: published.event.id });
      assert.equal(listed.items.length, 2);
    } finally {
      watch.close();
    }
  });

  test("a watch resumed with a token continues right after that update", async () => {
    const correlationId = `resume-${Date.now()}`;
    const watch = new LiveWatch(client, correlationId);
    let updates: ExecutionUpdate[];
    let eventId: string;
    try {
      await watch.ready();
      eventId = (await client.publish("orders.created", { order_id: "o-2", amount: 500 }, { correlationId })).event.id;
      updates = await watch.collect((got) => finals(got).length === 2);
    } finally {
      watch.close();
    }
    const from = updates[0] as ExecutionUpdate;
    const resumed = client.watchExecutions({ correlationId, resumeToken: from.resumeToken });
    const replayed: ExecutionUpdate[] = [];
    for await (const update of resumed) {
      if (update.eventId !== eventId) continue; // a late probe of the first watch
      replayed.push(update);
      if (replayed.length === updates.length - 1) break;
    }
    assert.deepEqual(
      replayed.map((u) => u.resumeToken),
      updates.slice(1).map((u) => u.resumeToken),
    );
  });

  test("publish with wait returns a sync action's final result", async () => {
    await client.createAction({
      name: "sync-greeting",
      trigger: { event_types: ["greetings.sent"] },
      handler: { type: "python", config: { function: "shop.handlers:alert" } },
      execution_mode: "sync",
    });
    const result = await client.publish("greetings.sent", { order_id: "g-1", amount: 3 }, { wait: true });
    const execution = result.executions[0];
    assert.ok(execution);
    assert.equal(execution.status, ExecutionStatus.SUCCEEDED);
    assert.equal((parseJson(execution.outputJson) as Record<string, unknown>)["alerted"], true);
  });

  test("a batch and CloudEvents: source + id deduplicate a redelivery", async () => {
    const batch = await client.publishMany([
      { type: "orders.created", data: { amount: 1 } },
      { type: "orders.paid", data: { amount: 2 }, idempotencyKey: "paid-1" },
    ]);
    assert.equal(batch.length, 2);
    assert.equal(batch[1]?.executions.length, 1, "orders.paid matches only every-order");

    const ce = {
      specversion: "1.0",
      id: `ce-${Date.now()}`,
      source: "//shop/checkout",
      type: "orders.refunded",
      time: "2026-01-02T03:04:05Z",
      correlationid: "ce-corr",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      data: { amount: 7 },
    };
    const first = await client.publishCloudEvent(ce);
    assert.equal(first.duplicate, false);
    assert.equal(first.event.correlationId, "ce-corr");
    assert.equal(first.event.source, "//shop/checkout");
    assert.equal((parseJson(first.event.metadataJson) as Record<string, unknown>)["traceparent"], ce.traceparent);
    const redelivered = await client.publishCloudEvents([ce]);
    assert.equal(redelivered[0]?.duplicate, true);
    assert.equal(redelivered[0]?.event.id, first.event.id);
  });

  test("execute streams one run's updates to its end; run returns the stored execution", async () => {
    const updates: ExecutionUpdate[] = [];
    for await (const update of client.execute("big-order-alert", { order_id: "x", amount: 9 })) updates.push(update);
    assert.equal(updates.at(-1)?.kind, Kind.SUCCEEDED);
    assert.ok(updates.some((u) => u.kind === Kind.LOG), "the handler's log line streams");

    const inline = await client.run({ type: "python", config: { function: "shop.handlers:quick" } }, { n: 4 });
    assert.equal(inline.status, ExecutionStatus.SUCCEEDED);
    assert.equal((parseJson(inline.outputJson) as Record<string, unknown>)["n"], 4);
  });
});

describe("typed errors", () => {
  test("a bad request is an InvalidArgument naming the field; nothing is stored", async () => {
    const err = await client
      .createAction({ name: "bad", trigger: { event_types: ["Orders Created!"] }, handler: { type: "python", config: { function: "shop.handlers:alert" } } })
      .then(
        () => assert.fail("the server accepted an invalid event type pattern"),
        (e: unknown) => e,
      );
    assert.ok(err instanceof InvalidArgument, String(err));
    assert.notEqual(err.reason, "");
    assert.ok(err.violations.some((v) => v.field.includes("event_types")), JSON.stringify(err.violations));
    await assert.rejects(client.getAction("bad"), NotFound);
  });

  test("an unknown action is a NotFound with its reason", async () => {
    await assert.rejects(client.getAction("no-such-action"), (err: unknown) => {
      assert.ok(err instanceof NotFound);
      assert.equal(err.reason, "ACTION_NOT_FOUND");
      return true;
    });
  });

  test("the actions file is checked before anything is sent", async () => {
    await assert.rejects(client.apply({ actions: [{ name: "x", trigger: { event_types: ["a.b"] }, handler: { type: "python" }, colour: "red" }] }), (err: unknown) => {
      assert.ok(err instanceof InvalidArgument);
      assert.equal(err.reason, "INVALID_ACTIONS_FILE");
      assert.deepEqual(
        err.violations.map((v) => v.field),
        ["actions[0].colour"],
      );
      return true;
    });
  });

  test("apply is all or nothing: one refused action saves none", async () => {
    const refused = await client
      .apply({
        actions: [
          { name: "fine-one", trigger: { event_types: ["a.b"] }, handler: { type: "python", config: { function: "shop.handlers:alert" } } },
          { name: "broken-one", trigger: { event_types: ["a.b"] }, handler: { type: "no-such-type" } },
        ],
      })
      .then(
        () => assert.fail("apply accepted an unknown handler type"),
        (e: unknown) => e,
      );
    assert.ok(refused instanceof InvalidArgument || refused instanceof Error);
    assert.match(String((refused as Error).message), /broken-one/);
    await assert.rejects(client.getAction("fine-one"), NotFound);
  });

  test("a call past its deadline is a DeadlineExceeded (an Unavailable: retry it)", async () => {
    const stream = client.watchExecutions({ correlationId: "nothing-comes", timeoutMs: 200 });
    await assert.rejects(
      (async () => {
        for await (const _ of stream) assert.fail("no update was expected");
      })(),
      (err: unknown) => err instanceof DeadlineExceeded && err instanceof Unavailable,
    );
  });
});

describe("explain, cancel, retry", () => {
  test("testEvent says which actions match and why", async () => {
    const results = await client.testEvent("orders.created", { amount: 50 });
    const alert = results.find((r) => r.action.endsWith("/big-order-alert"));
    assert.ok(alert);
    assert.equal(alert.matched, false);
    assert.equal(alert.reason, "conditions_not_met");
    assert.equal(alert.conditions[0]?.actualJson, "50");
  });

  test("a running execution is cancelled once; cancelling it again is a FailedPrecondition; retry starts it again", async () => {
    await client.createAction({
      name: "slow",
      trigger: { event_types: ["slow.started"] },
      handler: { type: "python", config: { function: "shop.handlers:quick", sleep: 30 } },
    });
    const correlationId = `cancel-${Date.now()}`;
    const watch = new LiveWatch(client, correlationId);
    try {
      await watch.ready();
      const published = await client.publish("slow.started", { n: 1 }, { correlationId });
      const executionId = published.executions[0]?.id ?? "";
      await watch.collect((got) => got.some((u) => u.kind === Kind.STARTED));
      const cancelled = await client.cancelExecution(executionId, "no longer needed");
      assert.equal(cancelled.status, ExecutionStatus.CANCELLED);
      await assert.rejects(client.cancelExecution(executionId), (err: unknown) => {
        assert.ok(err instanceof FailedPrecondition);
        assert.equal(err.reason, "EXECUTION_FINISHED");
        return true;
      });
      const retried = await client.retryExecution(executionId);
      assert.equal(retried.id, executionId);
      assert.notEqual(retried.status, ExecutionStatus.CANCELLED);
      await client.cancelExecution(executionId, "done testing");
    } finally {
      watch.close();
    }
  });
});

describe("dead letters", () => {
  test("an execution out of retries is listed and requeued", async () => {
    await client.createAction({
      name: "always-fails",
      trigger: { event_types: ["payments.failed"] },
      handler: { type: "python", config: { function: "shop.handlers:boom" } },
      // one retry 50 ms after the first failure, then the dead-letter queue
      retry_policy: { max_retries: 1, backoff: "fixed", initial_delay_ms: 50, jitter: false },
    });
    const correlationId = `dlq-${Date.now()}`;
    const watch = new LiveWatch(client, correlationId);
    try {
      await watch.ready();
      await client.publish("payments.failed", { id: 1 }, { correlationId });
      const updates = await watch.collect((got) => got.some((u) => u.kind === Kind.DEAD_LETTERED));
      const dead = updates.find((u) => u.kind === Kind.DEAD_LETTERED) as ExecutionUpdate;

      const page = await client.listDeadLetters({ action: "always-fails" });
      assert.deepEqual(
        page.items.map((e) => e.id),
        [dead.executionId],
      );
      assert.equal(page.items[0]?.status, ExecutionStatus.DEAD_LETTERED);
      assert.equal(page.items[0]?.error?.type, "ValueError");
      assert.equal(await client.requeueDeadLetters({ action: "always-fails", errorType: "ValueError" }), 1);
      const requeued = await watch.collect((got) => got.some((u) => u.executionId === dead.executionId && FINAL.has(u.kind)));
      assert.ok(requeued.length > 0);
    } finally {
      watch.close();
    }
  });
});

describe("README", () => {
  test("the quick start runs as pasted", async () => {
    const pkg = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## Quick start"));
    const script = /<<'JS'\n([\s\S]*?)\nJS\n/.exec(section)?.[1];
    assert.ok(script, "the quick start's script (a heredoc JS block)");
    const file = join(pkg, `.quickstart-test-${process.pid}.mjs`);
    writeFileSync(file, script);
    try {
      const env = { ...process.env, NEOACTIONS_SERVER: server.target, NEOACTIONS_API_KEY: server.adminKey };
      const { stdout } = await promisify(execFile)(process.execPath, [file], { cwd: pkg, env, timeout: 60_000 });
      assert.match(stdout, /ts-big-order-alert: created/);
      assert.match(stdout, /outputs \[/);
      assert.match(stdout, /^SUCCEEDED /m);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
