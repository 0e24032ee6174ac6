// Bundles the UI into dist/: exactly index.html, app.js and app.css, which the
// engine embeds at build time (engine/build.rs) and serves at / and /ui/{file}.
// A file is rewritten only when its content changed, so that an unchanged UI
// does not make cargo rebuild the engine (build.rs watches dist/).
import { build } from "esbuild";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");

const common = { bundle: true, minify: true, legalComments: "none", logLevel: "warning", target: ["es2022"], write: false };
const [js, css] = await Promise.all([
  build({ ...common, entryPoints: [join(root, "src/main.ts")], outfile: join(dist, "app.js"), format: "iife" }),
  build({ ...common, entryPoints: [join(root, "src/app.css")], outfile: join(dist, "app.css") }),
]);
const outputs = new Map([
  ["app.js", js.outputFiles[0].contents],
  ["app.css", css.outputFiles[0].contents],
  ["index.html", await readFile(join(root, "src/index.html"))],
]);
if (js.outputFiles.length !== 1 || css.outputFiles.length !== 1) {
  throw new Error("esbuild produced more than app.js and app.css: dist/ must hold exactly index.html, app.js and app.css");
}

await mkdir(dist, { recursive: true });
for (const name of await readdir(dist)) {
  if (!outputs.has(name)) await rm(join(dist, name), { recursive: true, force: true });
}
let total = 0;
for (const [name, content] of outputs) {
  const path = join(dist, name);
  const old = await readFile(path).catch(() => null);
  const changed = !old || Buffer.compare(old, Buffer.from(content)) !== 0;
  if (changed) await writeFile(path, content);
  total += content.length;
  console.log(`  dist/${name.padEnd(10)} ${(content.length / 1024).toFixed(1).padStart(6)} KiB${changed ? "" : "  (unchanged)"}`);
}
console.log(`  total           ${(total / 1024).toFixed(1).padStart(6)} KiB`);
