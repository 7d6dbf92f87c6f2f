/**
 * The `--report_path` HTML report: one self-contained file (inline CSS and SVG, no script, no
 * network) showing every candidate's memory, latency and recall, the Pareto front, the chosen and
 * the heuristic points, and the build's phase timings. A pure function of its data: the commands
 * gather the numbers and write the string with lib/io/atomic_file.ts.
 */

/** One point of the report: a measured candidate, or the scored index. */
export interface ReportPoint {
  key: string;
  /** Estimated (candidates) or actual (scored index) size, bytes. */
  memoryBytes: number;
  latencyMs: number | null;
  recall: number | null;
  status: string;
  param?: string;
  note?: string;
}

export interface ReportData {
  title: string;
  /** e.g. "recall@10 (predicted from a sample)" or "20-recall@20". */
  recallLabel: string;
  latencyLabel: string;
  points: ReportPoint[];
  chosenKey: string | null;
  heuristicKey: string | null;
  maxIndexMemoryBytes: number | null;
  maxQueryTimeMs: number | null;
  /** Phase name and wall seconds, in order. */
  phases: Array<{ label: string; seconds: number }>;
  /** Free lines shown under the title (data shape, sample, reason of the choice). */
  notes: string[];
}

const W = 640;
const H = 400;
const PAD = { left: 60, right: 20, top: 20, bottom: 50 };

/** HTML-escapes text and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(2)} MiB`;
}

/**
 * Keys on the Pareto front of (lower latency, higher recall, smaller memory): no other measured
 * point is at least as good on all three and better on one.
 *
 * @example paretoFront([{ key: "a", memoryBytes: 1, latencyMs: 1, recall: 0.9, status: "" },
 *   { key: "b", memoryBytes: 2, latencyMs: 2, recall: 0.8, status: "" }]) // Set {"a"}
 */
export function paretoFront(points: ReportPoint[]): Set<string> {
  const measured = points.filter((p) => p.latencyMs !== null && p.recall !== null);
  const front = new Set<string>();
  for (const p of measured) {
    const dominated = measured.some((q) =>
      q !== p && q.latencyMs! <= p.latencyMs! && q.recall! >= p.recall! && q.memoryBytes <= p.memoryBytes &&
      (q.latencyMs! < p.latencyMs! || q.recall! > p.recall! || q.memoryBytes < p.memoryBytes)
    );
    if (!dominated) front.add(p.key);
  }
  return front;
}

/** Scatter of recall against latency; Pareto front joined; chosen and heuristic marked. */
function scatterSvg(d: ReportData, front: Set<string>): string {
  const pts = d.points.filter((p) => p.latencyMs !== null && p.recall !== null);
  if (pts.length === 0) return `<p>No candidate was measured.</p>`;
  const maxX = Math.max(...pts.map((p) => p.latencyMs!), d.maxQueryTimeMs ?? 0) * 1.1 || 1;
  const minY = Math.max(0, Math.min(...pts.map((p) => p.recall!)) - 0.05);
  const x = (v: number) => PAD.left + (v / maxX) * (W - PAD.left - PAD.right);
  const y = (v: number) => H - PAD.bottom - ((v - minY) / (1 - minY || 1)) * (H - PAD.top - PAD.bottom);
  const maxMem = Math.max(...pts.map((p) => p.memoryBytes), 1);
  const parts: string[] = [];
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#333"/>`);
  parts.push(`<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="#333"/>`);
  for (let i = 0; i <= 4; i++) {
    const vx = (maxX * i) / 4;
    const vy = minY + ((1 - minY) * i) / 4;
    parts.push(`<text x="${x(vx).toFixed(1)}" y="${H - PAD.bottom + 16}" font-size="11" text-anchor="middle">${vx.toFixed(2)}</text>`);
    parts.push(`<text x="${PAD.left - 6}" y="${(y(vy) + 4).toFixed(1)}" font-size="11" text-anchor="end">${vy.toFixed(2)}</text>`);
    parts.push(`<line x1="${PAD.left}" y1="${y(vy).toFixed(1)}" x2="${W - PAD.right}" y2="${y(vy).toFixed(1)}" stroke="#eee"/>`);
  }
  parts.push(`<text x="${(W + PAD.left) / 2}" y="${H - 12}" font-size="12" text-anchor="middle">${escapeHtml(d.latencyLabel)}</text>`);
  parts.push(`<text x="14" y="${H / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">${escapeHtml(d.recallLabel)}</text>`);
  if (d.maxQueryTimeMs !== null) {
    const bx = x(d.maxQueryTimeMs).toFixed(1);
    parts.push(`<line x1="${bx}" y1="${PAD.top}" x2="${bx}" y2="${H - PAD.bottom}" stroke="#c00" stroke-dasharray="4 3"/>`);
    parts.push(`<text x="${bx}" y="${PAD.top + 10}" font-size="11" fill="#c00" text-anchor="end">latency bound </text>`);
  }
  const frontPts = pts.filter((p) => front.has(p.key)).sort((a, b) => a.latencyMs! - b.latencyMs!);
  if (frontPts.length > 1) {
    const path = frontPts.map((p) => `${x(p.latencyMs!).toFixed(1)},${y(p.recall!).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${path}" fill="none" stroke="#2a7" stroke-width="2"/>`);
  }
  for (const p of pts) {
    const r = 4 + 6 * Math.sqrt(p.memoryBytes / maxMem);
    const fill = p.key === d.chosenKey ? "#d62" : front.has(p.key) ? "#2a7" : "#48c";
    const cx = x(p.latencyMs!).toFixed(1);
    const cy = y(p.recall!).toFixed(1);
    parts.push(`<circle cx="${cx}" cy="${cy}" r="${r.toFixed(1)}" fill="${fill}" fill-opacity="0.75" stroke="#222"><title>${escapeHtml(`${p.key}: ${p.recall!.toFixed(3)}, ${p.latencyMs!.toFixed(3)} ms, ${mib(p.memoryBytes)}`)}</title></circle>`);
    if (p.key === d.heuristicKey) {
      parts.push(`<rect x="${(Number(cx) - r - 3).toFixed(1)}" y="${(Number(cy) - r - 3).toFixed(1)}" width="${(2 * r + 6).toFixed(1)}" height="${(2 * r + 6).toFixed(1)}" fill="none" stroke="#000" stroke-width="2"/>`);
    }
  }
  const legend = [["#d62", "chosen"], ["#2a7", "Pareto front"], ["#48c", "other"]];
  legend.forEach(([c, t], i) => {
    parts.push(`<circle cx="${W - 120}" cy="${H - PAD.bottom - 50 + 16 * i}" r="5" fill="${c}"/><text x="${W - 110}" y="${H - PAD.bottom - 46 + 16 * i}" font-size="11">${t}</text>`);
  });
  parts.push(`<rect x="${W - 125}" y="${H - PAD.bottom + 1}" width="10" height="10" fill="none" stroke="#000" stroke-width="2"/><text x="${W - 110}" y="${H - PAD.bottom + 10}" font-size="11">heuristic</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="recall against latency">${parts.join("")}</svg>`;
}

/** Horizontal bars of the phase timings. */
function phasesSvg(phases: ReportData["phases"]): string {
  if (phases.length === 0) return "";
  const rowH = 22;
  const labelW = 330;
  const barW = 260;
  const max = Math.max(...phases.map((p) => p.seconds), 1e-9);
  const h = rowH * phases.length + 10;
  const rows = phases.map((p, i) => {
    const w = Math.max(1, (p.seconds / max) * barW);
    const yy = 5 + i * rowH;
    return `<text x="${labelW - 6}" y="${yy + 14}" font-size="11" text-anchor="end">${escapeHtml(p.label)}</text>` +
      `<rect x="${labelW}" y="${yy + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="#48c"/>` +
      `<text x="${(labelW + w + 4).toFixed(1)}" y="${yy + 14}" font-size="11">${p.seconds.toFixed(2)} s</text>`;
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 70}" height="${h}" role="img" aria-label="phase timings"><rect x="0" y="0" width="100%" height="100%" fill="#fff"/>${rows.join("")}</svg>`;
}

/**
 * The whole report as one HTML string.
 *
 * @example const html = renderReport({ title: "build_index", recallLabel: "recall@10", latencyLabel: "ms", points: [],
 *   chosenKey: null, heuristicKey: null, maxIndexMemoryBytes: null, maxQueryTimeMs: null, phases: [], notes: [] });
 */
export function renderReport(d: ReportData): string {
  const front = paretoFront(d.points);
  const fmt = (v: number | null, digits: number) => (v === null ? "–" : v.toFixed(digits));
  const rows = d.points.map((p) => {
    const marks = [p.key === d.chosenKey ? "chosen" : "", p.key === d.heuristicKey ? "heuristic" : "", front.has(p.key) ? "Pareto" : ""].filter(Boolean).join(", ");
    return `<tr${p.key === d.chosenKey ? ' class="chosen"' : ""}><td><code>${escapeHtml(p.key)}</code></td><td>${mib(p.memoryBytes)}</td>` +
      `<td>${fmt(p.latencyMs, 3)}</td><td>${fmt(p.recall, 3)}</td><td>${escapeHtml(p.status)}</td><td><code>${escapeHtml(p.param ?? "")}</code></td>` +
      `<td>${escapeHtml(marks)}</td><td>${escapeHtml(p.note ?? "")}</td></tr>`;
  });
  const bounds = [
    d.maxIndexMemoryBytes === null ? "" : `max_index_memory_usage ${mib(d.maxIndexMemoryBytes)}`,
    d.maxQueryTimeMs === null ? "" : `max_index_query_time_ms ${d.maxQueryTimeMs}`,
  ].filter(Boolean).join(", ");
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(d.title)}</title>
<style>
body { font-family: sans-serif; margin: 24px; color: #222; background: #fff; }
table { border-collapse: collapse; font-size: 13px; }
td, th { border: 1px solid #ccc; padding: 3px 6px; text-align: left; }
tr.chosen { background: #fde8d8; font-weight: bold; }
code { font-size: 12px; }
</style></head>
<body>
<h1>${escapeHtml(d.title)}</h1>
<p>Chosen: <strong id="chosen-key">${escapeHtml(d.chosenKey ?? "none")}</strong>; heuristic (Python-compatible): <strong>${escapeHtml(d.heuristicKey ?? "none")}</strong>${bounds ? `; ${escapeHtml(bounds)}` : ""}</p>
${d.notes.map((n) => `<p>${escapeHtml(n)}</p>`).join("\n")}
<h2>${escapeHtml(d.recallLabel)} against latency</h2>
<p>Circle area ∝ memory; the green line joins the Pareto front (latency, recall, memory).</p>
${scatterSvg(d, front)}
<h2>Candidates</h2>
<table><thead><tr><th>key</th><th>memory</th><th>${escapeHtml(d.latencyLabel)}</th><th>${escapeHtml(d.recallLabel)}</th><th>status</th><th>parameters</th><th>marks</th><th>note</th></tr></thead>
<tbody>
${rows.join("\n")}
</tbody></table>
${d.phases.length ? `<h2>Phase timings</h2>\n${phasesSvg(d.phases)}` : ""}
</body></html>
`;
}
