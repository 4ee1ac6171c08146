'use strict';
/**
 * neoactions handler SDK for Node.js: serve the neoactions.handler.v1.Handler
 * gRPC protocol around one async function.
 *
 *   const { serve, HandlerError } = require('@neoactions/handler-sdk');
 *   serve({
 *     name: 'greet', version: '1.0.0',
 *     configSchema: { type: 'object', properties: { salutation: { type: 'string' } } },
 *     async execute(config, input, ctx) {
 *       ctx.log(`greeting ${input.name}`);
 *       return { greeting: `${config.salutation || 'Hello'}, ${input.name}` };
 *     },
 *   }, { port: 50072 });
 *
 * The protocol file is loaded at run time from the neoactions source tree
 * (proto/neoactions/handler/v1/handler.proto) or from $NEOACTIONS_HANDLER_PROTO.
 */
const path = require('node:path');
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const DEFAULT_PORT = 50071;
const SERVING = 'SERVING_STATUS_SERVING';
const NOT_SERVING = 'SERVING_STATUS_NOT_SERVING';

/** Fail the attempt with a chosen type; retryable says whether another attempt may succeed. */
class HandlerError extends Error {
  constructor(message, { type = '', retryable = true } = {}) {
    super(message);
    this.name = 'HandlerError';
    this.type = type || 'HandlerError';
    this.retryable = retryable;
  }
}

/** Fail the execution at once, whatever its retry policy. */
class NonRetryableError extends HandlerError {
  constructor(message, { type = 'NonRetryableError' } = {}) {
    super(message, { type, retryable: false });
    this.name = 'NonRetryableError';
  }
}

function protoPath() {
  if (process.env.NEOACTIONS_HANDLER_PROTO) return process.env.NEOACTIONS_HANDLER_PROTO;
  const candidates = [
    path.resolve(__dirname, 'proto', 'neoactions', 'handler', 'v1', 'handler.proto'), // packaged copy
    path.resolve(__dirname, '..', '..', 'proto', 'neoactions', 'handler', 'v1', 'handler.proto'), // source tree
  ];
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new Error(`handler.proto not found (looked in ${candidates.join(', ')}); set NEOACTIONS_HANDLER_PROTO`);
  return found;
}

let cachedPackage = null;

/** The loaded neoactions.handler.v1 package (service definition and message types). */
function loadProtocol() {
  if (cachedPackage) return cachedPackage;
  const file = protoPath();
  const root = path.resolve(path.dirname(file), '..', '..', '..');
  const definition = protoLoader.loadSync(file, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [root],
  });
  cachedPackage = grpc.loadPackageDefinition(definition).neoactions.handler.v1;
  return cachedPackage;
}

function timestampToDate(ts) {
  if (!ts) return null;
  const seconds = Number(ts.seconds || 0);
  const nanos = Number(ts.nanos || 0);
  if (seconds === 0 && nanos === 0) return null;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

/** What a handler sees as ctx. */
class HandlerContext {
  constructor(message, call) {
    const c = message || {};
    this.tenant = c.tenant || '';
    this.executionId = c.execution_id || '';
    this.action = c.action || '';
    this.actionVersion = Number(c.action_version || 0);
    this.attempt = c.attempt || 1;
    this.idempotencyKey = c.idempotency_key || '';
    this.deadline = timestampToDate(c.deadline);
    this.traceContext = { ...(c.trace_context || {}) };
    const traceparent = call.metadata.get('traceparent');
    if (traceparent.length && !this.traceContext.traceparent) this.traceContext.traceparent = String(traceparent[0]);
    this.correlationId = c.correlation_id || '';
    this.eventId = c.event_id || '';
    this.eventType = c.event_type || '';
    this._call = call;
    /** Aborted when the caller cancels or the deadline passes. */
    this.signal = new AbortController();
    call.on('cancelled', () => this.signal.abort());
  }

  remainingMs() {
    return this.deadline ? Math.max(0, this.deadline.getTime() - Date.now()) : Infinity;
  }

  log(message, level = 'info') {
    if (!this._call.cancelled) this._call.write({ log: { level, message: String(message) } });
  }

  progress(fraction, message = '') {
    const f = Math.max(0, Math.min(1, Number(fraction)));
    if (!this._call.cancelled) this._call.write({ progress: { fraction: f, message } });
  }
}

function errorUpdate(type, message, retryable, stack = '') {
  return { error: { type, message, retryable, stack } };
}

/** The three RPCs around one handler object. */
function implementation(handler) {
  return {
    Describe(_call, callback) {
      callback(null, {
        name: handler.name || 'handler',
        version: handler.version || '0.0.0',
        description: handler.description || '',
        config_schema_json: JSON.stringify(handler.configSchema || { type: 'object' }),
        capabilities: handler.capabilities || [],
      });
    },

    async Check(_call, callback) {
      try {
        const ok = handler.check ? await handler.check() : true;
        callback(null, { status: ok ? SERVING : NOT_SERVING, message: '' });
      } catch (err) {
        callback(null, { status: NOT_SERVING, message: String(err && err.message ? err.message : err) });
      }
    },

    async Execute(call) {
      let config;
      let input;
      try {
        config = call.request.config_json ? JSON.parse(call.request.config_json) : {};
        input = call.request.input_json ? JSON.parse(call.request.input_json) : null;
      } catch (err) {
        call.write(errorUpdate('invalid_request', `config or input is not JSON: ${err.message}`, false));
        call.end();
        return;
      }
      const ctx = new HandlerContext(call.request.context, call);
      let update;
      try {
        const output = await handler.execute(config, input, ctx);
        const text = JSON.stringify(output === undefined ? null : output);
        update = { result: { output_json: text } };
      } catch (err) {
        if (err instanceof HandlerError) {
          update = errorUpdate(err.type, err.message, err.retryable, err.stack || '');
        } else if (err instanceof Error) {
          update = errorUpdate(err.name || 'Error', err.message, true, err.stack || '');
        } else {
          update = errorUpdate('Error', String(err), true);
        }
      }
      if (!call.cancelled) {
        call.write(update);
        call.end();
      }
    },
  };
}

/**
 * Serve `handler` until SIGTERM/SIGINT. Resolves with { server, port } once bound.
 * Options: address ('host:port' or 'unix:/path'), else port, else
 * $NEOACTIONS_HANDLER_ADDRESS, else [::]:$NEOACTIONS_HANDLER_PORT, else [::]:50071;
 * graceMs (5000): how long in-flight calls may finish after a stop signal;
 * handleSignals (true): stop on SIGTERM/SIGINT.
 */
function serve(handler, options = {}) {
  if (!handler || typeof handler.execute !== 'function') {
    throw new TypeError('serve(handler): handler.execute(config, input, ctx) is required');
  }
  const pkg = loadProtocol();
  let address = options.address;
  if (!address && options.port !== undefined) address = `[::]:${options.port}`;
  if (!address) address = process.env.NEOACTIONS_HANDLER_ADDRESS;
  if (!address) address = `[::]:${process.env.NEOACTIONS_HANDLER_PORT || DEFAULT_PORT}`;
  if (address.startsWith('unix:')) {
    const file = address.replace(/^unix:(\/\/)?/, '');
    try {
      fs.unlinkSync(file); // a socket left by a previous process
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
  }
  const server = new grpc.Server();
  server.addService(pkg.Handler.service, implementation(handler));
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) {
        reject(err);
        return;
      }
      // let in-flight calls finish, but not for longer than the grace period
      const graceMs = options.graceMs !== undefined ? options.graceMs : 5000;
      const stop = () => {
        setTimeout(() => {
          server.forceShutdown();
          process.exit(0);
        }, graceMs).unref();
        server.tryShutdown(() => process.exit(0));
      };
      if (options.handleSignals !== false) {
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      }
      const where = address.startsWith('unix:') ? address : `port ${port}`;
      process.stdout.write(`handler ${handler.name || 'handler'} ${handler.version || '0.0.0'} serving at ${where}\n`);
      resolve({ server, port });
    });
  });
}

module.exports = { serve, loadProtocol, HandlerError, NonRetryableError, HandlerContext, DEFAULT_PORT };
