/** TLS and API keys against a real server. */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { NeoActionsClient, Unauthenticated, Unavailable } from "../src/index.js";
import { openTransport } from "../src/transport.js";
import { selfSignedCertificate, startServer, tenantName, type Server } from "./harness.js";

describe("TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "neoactions-ts-tls-"));
  const pem = selfSignedCertificate(dir);
  let server: Server | undefined;

  before(async () => {
    if (pem === undefined) {
      if (process.env["CI"] === "true") throw new Error("openssl is needed to make the TLS test's certificate");
      return;
    }
    server = await startServer({ args: ["--tls-cert", pem.cert, "--tls-key", pem.key] });
  });
  after(async () => {
    await server?.stop();
  });

  test("a client trusting the server's certificate talks TLS", { skip: pem === undefined && "openssl not found" }, async () => {
    const s = server as Server;
    const client = s.client({ tls: { ca: readFileSync((pem as { cert: string }).cert) }, tenant: "admin" });
    const page = await client.listTenants();
    assert.ok(page.items.some((t) => t.name === "tenants/admin"));
  });

  test("a plaintext client cannot talk to a TLS server", { skip: pem === undefined && "openssl not found" }, async () => {
    const s = server as Server;
    const plain = s.client({ timeoutMs: 5_000 });
    await assert.rejects(plain.listTenants(), Unavailable);
  });
});

/** The API-key service, when this build of the contract has it (proto/neoactions/v1/keys.proto). */
async function keyService(): Promise<DescService | undefined> {
  const path = "../src/gen/neoactions/v1/keys_pb.js";
  try {
    const mod = (await import(path)) as { ApiKeyService?: DescService };
    return mod.ApiKeyService;
  } catch {
    return undefined;
  }
}

interface KeyClient {
  createApiKey(req: { parent: string; displayName: string; role: string }): Promise<{ key: string; apiKey?: { name: string } }>;
  revokeApiKey(req: { name: string }): Promise<unknown>;
}

const service = await keyService();

describe("API keys", () => {
  let server: Server | undefined;
  before(async () => {
    if (service !== undefined) server = await startServer();
  });
  after(async () => {
    await server?.stop();
  });
  // Needs the server's API keys (ApiKeyService and NEOACTIONS_BOOTSTRAP_KEY_FILE): skipped on a
  // build without them, and failing when the service exists but the server enforces no key.
  const skip = service === undefined && "this build's contract has no ApiKeyService (proto/neoactions/v1/keys.proto)";

  test("calls without a key, or with an unknown one, are Unauthenticated", { skip }, async () => {
    const s = server as Server;
    assert.notEqual(s.adminKey, "", "the server wrote its bootstrap admin key to NEOACTIONS_BOOTSTRAP_KEY_FILE");
    await assert.rejects(s.client({ apiKey: "" }).listTenants(), Unauthenticated);
    await assert.rejects(s.client({ apiKey: "not-a-key" }).listTenants(), Unauthenticated);
  });

  test("a revoked key is Unauthenticated", { skip }, async () => {
    const s = server as Server;
    const admin = s.client();
    const tenant = tenantName("keys");
    await admin.createTenant(tenant);
    const { transport } = openTransport({ target: s.target, apiKey: s.adminKey });
    const keys = createClient(service as DescService, transport) as unknown as KeyClient;
    const created = await keys.createApiKey({ parent: `tenants/${tenant}`, displayName: "ts-client-test", role: "writer" });
    const holder = new NeoActionsClient({ target: s.target, tenant, apiKey: created.key });
    try {
      assert.deepEqual((await holder.listActions()).items, []);
      await keys.revokeApiKey({ name: created.apiKey?.name ?? "" });
      // revocation reaches every server process within about a second: poll, bounded
      let refused: unknown;
      for (let i = 0; i < 100 && refused === undefined; i++) {
        await holder.listActions().then(
          () => new Promise((r) => setTimeout(r, 100)),
          (err: unknown) => {
            refused = err;
          },
        );
      }
      assert.ok(refused instanceof Unauthenticated, `expected Unauthenticated, got ${String(refused)}`);
    } finally {
      holder.close();
    }
  });
});
