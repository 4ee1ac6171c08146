'use strict';
/**
 * An example neoactions handler in Node.js: greets `input.name`.
 *
 *   node example/greet.js            # serves on [::]:50071 (or $NEOACTIONS_HANDLER_ADDRESS)
 *   node example/greet.js 50072      # serves on [::]:50072
 *
 * Input `{"name": "Ada"}` -> output `{"greeting": "Hello, Ada", ...}`.
 * `{"fail": true}` fails the attempt (not retryable); `{"sleepMs": N}` waits first.
 */
const { serve, NonRetryableError } = require('..');

const greet = {
  name: 'greet',
  version: '1.0.0',
  description: 'Greets someone by name',
  configSchema: {
    type: 'object',
    properties: { salutation: { type: 'string', minLength: 1 } },
    additionalProperties: false,
  },
  capabilities: ['streaming-logs'],

  async execute(config, input, ctx) {
    const name = input && typeof input.name === 'string' ? input.name : 'world';
    ctx.log(`greeting ${name} (attempt ${ctx.attempt})`);
    if (input && input.fail) throw new NonRetryableError(`refusing to greet ${name}`, { type: 'refused' });
    if (input && input.sleepMs) {
      await new Promise((resolve) => setTimeout(resolve, Number(input.sleepMs)));
    }
    ctx.progress(1, 'greeted');
    return {
      greeting: `${config.salutation || 'Hello'}, ${name}`,
      runtime: `node ${process.version}`,
      tenant: ctx.tenant,
      executionId: ctx.executionId,
      idempotencyKey: ctx.idempotencyKey,
      traceparent: ctx.traceContext.traceparent || '',
      remainingMs: ctx.remainingMs(),
    };
  },
};

const port = process.argv[2] ? Number(process.argv[2]) : undefined;
serve(greet, port !== undefined ? { port } : {}).catch((err) => {
  process.stderr.write(`cannot serve: ${err.message}\n`);
  process.exit(1);
});
