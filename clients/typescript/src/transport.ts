/**
 * The connection: plain gRPC over HTTP/2 (the server is a standard gRPC server), with the
 * API key in every call's `authorization` metadata, and TLS when asked for.
 */
import type * as http2 from "node:http2";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Interceptor, Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";

/** Where the client connects when no target is given. */
export const DEFAULT_TARGET = "127.0.0.1:50051";
/** Milliseconds a unary call may take (publishing with `wait` included). */
export const DEFAULT_TIMEOUT_MS = 60_000;
/** The environment variable holding the API key when the options give none. */
export const API_KEY_ENV = "NEOACTIONS_API_KEY";
/** The environment variable naming the server when the options give no target (as the CLI's). */
export const SERVER_ENV = "NEOACTIONS_SERVER";
/** The environment variable naming a CA file (PEM) to trust: TLS, as the CLI's `--tls-ca`. */
export const TLS_CA_ENV = "NEOACTIONS_TLS_CA";
/** The largest message sent or received, as the Python client's channel allows. */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

/** TLS settings: `true` for the system's roots, or PEM material of your own. */
export interface TlsOptions {
  /** Root certificates to trust (PEM), instead of the system's. */
  ca?: string | Buffer;
  /** A client certificate and its key (PEM), for servers asking for mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** The name to check the server's certificate against, when it is not the target's host. */
  serverName?: string;
}

export interface ConnectionOptions {
  /** `host:port`, or a URL: `http://host:port` (plaintext), `https://host:port` (TLS).
   * Default: `$NEOACTIONS_SERVER`, else `127.0.0.1:50051`. */
  target?: string;
  /** The API key sent as `authorization: Bearer <key>`; default: `$NEOACTIONS_API_KEY`.
   * An empty string sends no key. */
  apiKey?: string;
  /** TLS (`true`, or certificates). A `https://` target implies it; default: TLS trusting
   * `$NEOACTIONS_TLS_CA` when that is set, else plaintext. */
  tls?: boolean | TlsOptions;
  /** Metadata sent with every call (`x-request-id` is added per call when absent). */
  headers?: Record<string, string>;
  /** Keepalive: PING the server every so many milliseconds while calls are open. */
  pingIntervalMs?: number;
}

function baseUrl(target: string, tls: boolean): string {
  if (/^https?:\/\//.test(target)) return target.replace(/\/+$/, "");
  return `${tls ? "https" : "http"}://${target}`;
}

function authInterceptor(apiKey: string, headers: Record<string, string>): Interceptor {
  return (next) => async (req) => {
    for (const [key, value] of Object.entries(headers)) {
      if (!req.header.has(key)) req.header.set(key, value);
    }
    if (apiKey && !req.header.has("authorization")) req.header.set("authorization", `Bearer ${apiKey}`);
    if (!req.header.has("x-request-id")) req.header.set("x-request-id", randomUUID());
    return next(req);
  };
}

/** A gRPC transport for the options, and the session it runs on (to close it). */
export function openTransport(options: ConnectionOptions): { transport: Transport; session: Http2SessionManager } {
  const target = options.target || process.env[SERVER_ENV] || DEFAULT_TARGET;
  const caFile = process.env[TLS_CA_ENV];
  const tlsOption = options.tls ?? (caFile ? { ca: readFileSync(caFile) } : false);
  const useTls = Boolean(tlsOption) || target.startsWith("https://");
  const url = baseUrl(target, useTls);
  const tls = typeof tlsOption === "object" ? tlsOption : {};
  const nodeOptions: http2.SecureClientSessionOptions = {};
  if (useTls) {
    if (tls.ca !== undefined) nodeOptions.ca = tls.ca;
    if (tls.cert !== undefined) nodeOptions.cert = tls.cert;
    if (tls.key !== undefined) nodeOptions.key = tls.key;
    if (tls.serverName !== undefined) nodeOptions.servername = tls.serverName;
  }
  const session = new Http2SessionManager(
    url,
    options.pingIntervalMs === undefined ? {} : { pingIntervalMs: options.pingIntervalMs },
    nodeOptions,
  );
  const apiKey = options.apiKey ?? process.env[API_KEY_ENV] ?? "";
  const transport = createGrpcTransport({
    baseUrl: url,
    sessionManager: session,
    readMaxBytes: MAX_MESSAGE_BYTES,
    writeMaxBytes: MAX_MESSAGE_BYTES,
    interceptors: [authInterceptor(apiKey, options.headers ?? {})],
  });
  return { transport, session };
}
