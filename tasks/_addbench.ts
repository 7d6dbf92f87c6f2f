import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Index } from "../ffi/faiss.ts";
const dir = process.argv[2];
const files = readdirSync(join(dir, "emb")).sort();
const parts = files.map((f) => {
  const buf = readFileSync(join(dir, "emb", f));
  const h = buf.readUInt16LE(8);
  const body = buf.subarray(10 + h);
  return new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength));
});
const x = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
let o = 0;
for (const p of parts) { x.set(p, o); o += p.length; }
const idx = Index.read(join(dir, "ours/knn.index"));
const n = x.length / idx.d;
idx.setParameters("nprobe=1,efSearch=16");
for (const mode of ["blocking", "job2000", "job20000", "blocking"]) {
  idx.reset();
  const t0 = performance.now();
  if (mode === "blocking") idx.add(x);
  else await idx.addWithProgress(x, { progressRows: Number(mode.slice(3)) });
  console.log(mode, n, ((performance.now() - t0) / 1000).toFixed(2), "s");
}
