// Bundles the UI into dist/: exactly index.html, app.js and app.css, which the
// engine embeds at build time (engine/build.rs) and serves at / and /ui/{file}.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(fileURLToPath(import.meta.url));
const dist = join(root, "dist");
await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = { bundle: true, minify: true, legalComments: "none", logLevel: "warning", target: ["es2022"] };
await build({ ...common, entryPoints: [join(root, "src/main.ts")], outfile: join(dist, "app.js"), format: "iife", sourcemap: false });
await build({ ...common, entryPoints: [join(root, "src/app.css")], outfile: join(dist, "app.css"), loader: { ".css": "css" } });
await copyFile(join(root, "src/index.html"), join(dist, "index.html"));

const files = (await readdir(dist)).sort();
const expected = ["app.css", "app.js", "index.html"];
if (files.join() !== expected.join()) {
  throw new Error(`dist/ must hold exactly ${expected.join(", ")}, found ${files.join(", ")}`);
}
let total = 0;
for (const f of files) {
  const { size } = await stat(join(dist, f));
  total += size;
  console.log(`  dist/${f}  ${(size / 1024).toFixed(1)} KiB`);
}
console.log(`  total      ${(total / 1024).toFixed(1)} KiB`);
