// json-tools: reshape JSON. input = {config, data, context}.

function lookup(data, path) {
  let value = data;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || !(part in value)) return undefined;
    value = value[part];
  }
  return value;
}

function transform(input) {
  const out = {};
  for (const [field, path] of Object.entries(input.config.pick || {})) {
    const value = lookup(input.data, path);
    if (value !== undefined) out[field] = value;
    else if (input.config.keep_missing) out[field] = null;
  }
  Object.assign(out, input.config.set || {});
  return out;
}
