// text-tools: templates and slugs. input = {config, data, context}.

function lookup(data, path) {
  let value = data;
  for (const part of path.split(".")) {
    if (value === null || typeof value !== "object" || !(part in value)) return undefined;
    value = value[part];
  }
  return value;
}

function show(value) {
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function template(input) {
  const text = input.config.template.replace(/\$\{\s*([A-Za-z0-9_.]+)\s*\}/g, (_, path) => show(lookup(input.data, path)));
  return { [input.config.field || "text"]: text };
}

function slugify(input) {
  const source = show(lookup(input.data, input.config.source || "text"));
  let slug = source
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
  if (input.config.max_length) slug = slug.slice(0, input.config.max_length).replace(/-+$/, "");
  return { slug };
}
