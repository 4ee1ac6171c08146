/** TLS and API keys against a real server (one server, serving TLS). */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NeoActionsClient, PermissionDenied, Unauthenticated, Unavailable, type ClientOptions } from "../src/index.js";
import { selfSignedCertificate, startServer, tenantName, type Server } from "./harness.js";

const pem = selfSignedCertificate(mkdtempSync(join(tmpdir(), "neoactions-ts-tls-")));
if (pem === undefined && process.env["CI"] === "true") throw new Error("openssl is needed to make the TLS test's certificate");
let server: Server;
/** How clients reach the server: TLS trusting its certificate. */
let tls: ClientOptions;

before(async () => {
  server = await startServer(pem ? { args: ["--tls-cert", pem.cert, "--tls-key", pem.key] } : {});
  tls = pem ? { tls: { ca: readFileSync(pem.cert) } } : {};
});
after(async () => {
  await server?.stop();
});

describe("TLS", { skip: pem === undefined && "openssl not found" }, () => {
  test("a client trusting the server's certificate talks TLS", async () => {
    const page = await server.client(tls).listTenants();
    assert.ok(page.items.some((t) => t.name === "tenants/admin"));
  });

  test("a plaintext client cannot talk to a TLS server: Unavailable", async () => {
    await assert.rejects(server.client({ timeoutMs: 5_000 }).listTenants(), Unavailable);
  });
});

describe("API keys", () => {
  test("calls without a key, or with an unknown one, are Unauthenticated", async () => {
    assert.notEqual(server.adminKey, "", "the server wrote its bootstrap admin key to NEOACTIONS_BOOTSTRAP_KEY_FILE");
    await assert.rejects(server.client({ ...tls, apiKey: "" }).listTenants(), Unauthenticated);
    await assert.rejects(server.client({ ...tls, apiKey: "not-a-key" }).listTenants(), Unauthenticated);
  });

  test("a key works in its tenant until it is revoked, then it is Unauthenticated", async () => {
    const tenant = tenantName("keys");
    const admin = server.client(tls);
    await admin.createTenant(tenant);
    const created = await admin.createApiKey("writer", { tenant, displayName: "ts-client-test" });
    assert.equal(created.apiKey.role, "writer");
    const holder = server.client({ ...tls, tenant, apiKey: created.key });
    assert.deepEqual((await holder.listActions()).items, []);
    await assert.rejects(holder.createTenant(tenantName("nope")), PermissionDenied);

    await admin.revokeApiKey(created.apiKey.name);
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
  });

  test("the key comes from NEOACTIONS_API_KEY when the options give none", async () => {
    const saved = process.env["NEOACTIONS_API_KEY"];
    process.env["NEOACTIONS_API_KEY"] = server.adminKey;
    const client = new NeoActionsClient({ ...tls, target: server.target });
    try {
      assert.ok((await client.listTenants()).items.length >= 1);
    } finally {
      client.close();
      if (saved === undefined) delete process.env["NEOACTIONS_API_KEY"];
      else process.env["NEOACTIONS_API_KEY"] = saved;
    }
  });
});
