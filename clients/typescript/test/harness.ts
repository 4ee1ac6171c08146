/**
 * A real neoactions server for the tests: `neoactions serve --port 0` on the embedded store
 * in a fresh directory, from the repository's virtualenv (`make install`), with the test
 * handlers of tests/fixtures (`shop.handlers:*`) approved.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { NeoActionsClient, type ClientOptions } from "../src/index.js";

/** The repository root (this file runs from clients/typescript/dist/test/). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const LISTENING = /neoactions listening on ([^\s]+):(\d+)/;
const STARTUP_MS = 90_000;

export interface Server {
  target: string;
  /** The admin key the server bootstrapped (`NEOACTIONS_BOOTSTRAP_KEY_FILE`); "" when the
   * server does not authenticate. */
  adminKey: string;
  dataDir: string;
  client(options?: ClientOptions): NeoActionsClient;
  stop(): Promise<void>;
}

/** The `neoactions` command: `$NEOACTIONS_BIN`, else the repository's `.venv/bin/neoactions`. */
export function neoactionsBin(): string {
  return process.env["NEOACTIONS_BIN"] ?? join(ROOT, ".venv", "bin", "neoactions");
}

export async function startServer(options: { args?: string[]; env?: Record<string, string> } = {}): Promise<Server> {
  const dataDir = mkdtempSync(join(tmpdir(), "neoactions-ts-"));
  const keyFile = join(dataDir, "bootstrap.key");
  const fixtures = join(ROOT, "tests", "fixtures");
  const env: Record<string, string | undefined> = {
    ...process.env,
    PYTHONPATH: [fixtures, process.env["PYTHONPATH"]].filter(Boolean).join(":"),
    NEOACTIONS_PYTHON_HANDLER_MODULES: "shop",
    NEOACTIONS_BOOTSTRAP_KEY_FILE: keyFile,
    NEOACTIONS_SHUTDOWN_GRACE_SECONDS: "2",
    NEOACTIONS_POLL_INTERVAL_SECONDS: "0.2",
    // the dead-letter tests fail on purpose: an open breaker would only delay them
    NEOACTIONS_FLOW_CONTROL: JSON.stringify({ breaker: { failure_threshold: 0 } }),
    ...options.env,
  };
  delete env["NEOACTIONS_API_KEY"];
  delete env["NEOACTIONS_DATABASE_URL"];
  const log = join(dataDir, "server.log");
  const proc = spawn(neoactionsBin(), ["serve", "--port", "0", "--data-dir", join(dataDir, "store"), ...(options.args ?? [])], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  proc.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const [host, port] = await listening(proc, () => stderr);
  const adminKey = existsSync(keyFile) ? readFileSync(keyFile, "utf8").trim() : "";
  const target = `${host}:${port}`;
  const clients: NeoActionsClient[] = [];
  return {
    target,
    adminKey,
    dataDir,
    client(clientOptions: ClientOptions = {}) {
      const client = new NeoActionsClient({ target, apiKey: adminKey, ...clientOptions });
      clients.push(client);
      return client;
    },
    async stop() {
      for (const c of clients) c.close();
      await stopProcess(proc);
      writeFileSync(log, stderr);
      if (!process.env["KEEP_SERVER_DATA"]) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function listening(proc: ChildProcess, stderr: () => string): Promise<[string, string]> {
  return new Promise((resolvePromise, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`the server did not start within ${STARTUP_MS} ms:\n${stderr().slice(-3000)}`));
    }, STARTUP_MS);
    proc.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk;
      const m = LISTENING.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout?.resume();
        resolvePromise([m[1] as string, m[2] as string]);
      }
    });
    proc.on("error", (err) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${neoactionsBin()} (run make install): ${err.message}`));
    });
    proc.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code}) before listening:\n${stderr().slice(-3000)}`));
    });
  });
}

function stopProcess(proc: ChildProcess): Promise<void> {
  return new Promise((resolvePromise) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolvePromise();
    const kill = setTimeout(() => proc.kill("SIGKILL"), 15_000);
    proc.once("exit", () => {
      clearTimeout(kill);
      resolvePromise();
    });
    proc.kill("SIGTERM");
  });
}

/** A self-signed certificate for 127.0.0.1 made with `openssl`, or `undefined` without it. */
export function selfSignedCertificate(dir: string): { cert: string; key: string } | undefined {
  const cert = join(dir, "server.pem");
  const key = join(dir, "server.key");
  const made = spawnSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
      "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
    { stdio: "ignore" },
  );
  return made.status === 0 ? { cert, key } : undefined;
}

/** A fresh tenant name for one test file. */
export function tenantName(prefix: string): string {
  return `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
}
