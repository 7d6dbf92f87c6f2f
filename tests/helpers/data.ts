/** Synthetic data and exact references for tests: seeded, so every run sees the same vectors. */

/** mulberry32: small, fast, good enough for test data. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal via Box–Muller. */
export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/**
 * n points in `clusters` blobs that each lie near a 6-dimensional subspace (centres spread wide,
 * small isotropic noise): like real embeddings, low intrinsic dimension that IVF, HNSW and PQ exploit.
 */
export function clusteredData(n: number, d: number, clusters: number, seed: number): Float32Array {
  const intrinsic = 6;
  // Centres and subspaces depend on `clusters` and d only, so base and query sets share them.
  const gShape = gaussian(seededRandom(clusters * 7919 + d));
  const centres = Float32Array.from({ length: clusters * d }, () => gShape() * 4);
  const basis = Float32Array.from({ length: clusters * intrinsic * d }, () => gShape() / Math.sqrt(intrinsic));
  const g = gaussian(seededRandom(seed));
  const x = new Float32Array(n * d);
  const z = new Float64Array(intrinsic);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(seededRandom(seed * 1_000_003 + i)() * clusters);
    for (let t = 0; t < intrinsic; t++) z[t] = g();
    for (let j = 0; j < d; j++) {
      let v = centres[c * d + j] + 0.05 * g();
      for (let t = 0; t < intrinsic; t++) v += basis[(c * intrinsic + t) * d + j] * z[t];
      x[i * d + j] = v;
    }
  }
  return x;
}

export function uniformData(n: number, d: number, seed: number): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n * d }, () => r());
}

/** Exact k nearest neighbours by brute force in float64 (ties broken by smaller id, like FAISS's heap). */
export function bruteForce(
  base: Float32Array,
  queries: Float32Array,
  d: number,
  k: number,
  metric: "ip" | "l2",
): { labels: number[][]; scores: number[][] } {
  const n = base.length / d;
  const nq = queries.length / d;
  const labels: number[][] = [];
  const scores: number[][] = [];
  for (let q = 0; q < nq; q++) {
    const s: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let j = 0; j < d; j++) {
        const a = queries[q * d + j];
        const b = base[i * d + j];
        acc += metric === "ip" ? a * b : (a - b) * (a - b);
      }
      s.push([acc, i]);
    }
    s.sort((x, y) => (metric === "ip" ? y[0] - x[0] : x[0] - y[0]) || x[1] - y[1]);
    labels.push(s.slice(0, k).map((e) => e[1]));
    scores.push(s.slice(0, k).map((e) => e[0]));
  }
  return { labels, scores };
}

/** Mean fraction of the true top-k found in the returned top-k. */
export function recallAtK(found: BigInt64Array, truth: number[][], k: number): number {
  let hit = 0;
  truth.forEach((row, q) => {
    const got = new Set(Array.from(found.subarray(q * k, q * k + k), Number));
    for (const t of row.slice(0, k)) if (got.has(t)) hit++;
  });
  return hit / (truth.length * k);
}

/** Rows [from, to) of a row-major matrix as a view. */
export function rows(x: Float32Array, d: number, from: number, to: number): Float32Array {
  return x.subarray(from * d, to * d);
}
