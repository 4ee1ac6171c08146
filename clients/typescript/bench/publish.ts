/**
 * The TypeScript side of `python -m bench clients`: publish as fast as the server takes it.
 *
 *   node dist/bench/publish.js TARGET single COUNT 1 IN_FLIGHT   COUNT PublishEvent calls
 *   node dist/bench/publish.js TARGET batch COUNT BATCH IN_FLIGHT  PublishEvents of BATCH events
 *
 * IN_FLIGHT calls at a time, one connection, the key from NEOACTIONS_API_KEY. Prints one JSON
 * line: events accepted, wall seconds, this process's CPU seconds.
 */
import { NeoActionsClient, type EventInput } from "../src/index.js";

const [target, mode, countArg, batchArg, inFlightArg] = process.argv.slice(2);
const count = Number(countArg);
const batch = Number(batchArg);
const inFlight = Number(inFlightArg);
if (!target || (mode !== "single" && mode !== "batch") || !(count > 0 && batch > 0 && inFlight > 0)) {
  console.error("usage: publish.js TARGET single|batch COUNT BATCH IN_FLIGHT");
  process.exit(2);
}

function event(seq: number): EventInput {
  return { type: "bench.order.created", source: "bench", data: { seq, order_id: `o-${seq}`, amount: 120.5, region: "eu" } };
}

const client = new NeoActionsClient({ target, tenant: "admin" });
const calls: [number, number][] = [];
for (let first = 0; first < count; first += mode === "single" ? 1 : batch) calls.push([first, Math.min(mode === "single" ? 1 : batch, count - first)]);
let next = 0;
let accepted = 0;

async function worker(): Promise<void> {
  while (next < calls.length) {
    const [first, n] = calls[next++] as [number, number];
    if (mode === "single") {
      await client.publish("bench.order.created", event(first).data ?? {}, { source: "bench" });
      accepted += 1;
    } else {
      const events = Array.from({ length: n }, (_, i) => event(first + i));
      accepted += (await client.publishMany(events)).length;
    }
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: inFlight }, worker));
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
client.close();
console.log(JSON.stringify({ events: accepted, seconds, cpu: (cpu.user + cpu.system) / 1e6 }));
