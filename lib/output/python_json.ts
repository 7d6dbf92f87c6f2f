/**
 * JSON as Python's `json.dumps` writes it (", " and ": " separators, floats keep a decimal
 * point), so index_infos.json reads the same as the Python tool's. Integer-valued fields are
 * listed in `ints`; every other number is a float.
 */
export function writeJsonPython(obj: object, ints: ReadonlySet<string> = INT_FIELDS): string {
  const parts = Object.entries(obj).map(([k, v]) => `${JSON.stringify(k)}: ${pyValue(k, v, ints)}`);
  return `{${parts.join(", ")}}`;
}

/** The index_infos fields that are Python ints; every other number there is a float. */
export const INT_FIELDS: ReadonlySet<string> = new Set(["size in bytes", "nb vectors", "vectors dimension"]);

function pyValue(key: string, v: unknown, ints: ReadonlySet<string>): string {
  if (typeof v === "number") {
    if (!Number.isFinite(v)) return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
    if (ints.has(key) || !Number.isInteger(v)) return String(v);
    return `${v}.0`;
  }
  return JSON.stringify(v ?? null);
}
