/** A `watchExecutions` stream known to be registered on the server before a test publishes. */
import type { ExecutionUpdate, NeoActionsClient, WatchFilter } from "../src/index.js";

/**
 * Probe events (type `probe.ping`, matching no action) are published with the watched
 * correlation id until the first comes back, so no test relies on sleeping.
 */
export class LiveWatch {
  private readonly queue: ExecutionUpdate[] = [];
  private waiter: (() => void) | undefined;
  private failure: unknown;
  private ended = false;
  private readonly probes = new Set<string>();
  private readonly controller = new AbortController();

  constructor(
    private readonly client: NeoActionsClient,
    private readonly correlationId: string,
    filter: WatchFilter = {},
  ) {
    void this.pump(client.watchExecutions({ correlationId, ...filter, signal: this.controller.signal }));
  }

  private async pump(stream: AsyncIterable<ExecutionUpdate>): Promise<void> {
    try {
      for await (const update of stream) {
        this.queue.push(update);
        this.wake();
      }
    } catch (err) {
      this.failure = err;
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** The next update, or `undefined` after `ms` milliseconds without one. */
  async next(ms: number): Promise<ExecutionUpdate | undefined> {
    if (!this.queue.length && !this.ended) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const update = this.queue.shift();
    if (update === undefined && this.ended && this.failure !== undefined) throw this.failure;
    return update;
  }

  /** Publish probes until one comes back through the watch. */
  async ready(): Promise<void> {
    for (let i = 0; i < 100; i++) {
      const probe = await this.client.publish("probe.ping", {}, { correlationId: this.correlationId });
      this.probes.add(probe.event.id);
      if ((await this.next(200)) !== undefined) return;
    }
    throw new Error("the watch never delivered a probe");
  }

  /** Updates (probes left out) until `done` holds, within `withinMs`. */
  async collect(done: (updates: ExecutionUpdate[]) => boolean, withinMs = 20_000): Promise<ExecutionUpdate[]> {
    const out: ExecutionUpdate[] = [];
    const deadline = Date.now() + withinMs;
    while (!done(out)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the watch did not deliver in time; got ${out.map((u) => u.kind).join(",")}`);
      const update = await this.next(left);
      if (update !== undefined && !this.probes.has(update.eventId)) out.push(update);
    }
    return out;
  }

  close(): void {
    this.controller.abort();
  }
}
