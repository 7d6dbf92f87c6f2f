/**
 * How python-fire turns one command-line value into a Python value: the text is parsed as
 * a Python literal in which bare names become strings, and anything that is not such a literal stays
 * the raw string. `5` → int, `1e9` → float, `True` → bool, `None` → None, `[a,b]` and `'["a","b"]'` →
 * list, `a,b` → tuple, `"x"` → the string x, `16G`, `knn.index`, `nprobe=8` → unchanged.
 *
 * fire does this with `ast.parse` + `ast.literal_eval` (fire/parser.py `DefaultParseValue`); this is a
 * small recursive-descent parser for the subset that can reach a CLI: numbers, strings, True/False/None,
 * bare names, lists and tuples. Dicts, sets, complex numbers and byte strings are left as raw text,
 * which is what every typed parameter here would reject anyway.
 */

/** The kinds of value fire can produce for our parameters. `raw` = not a literal, kept verbatim. */
export type LiteralKind = "None" | "bool" | "int" | "float" | "str" | "list" | "tuple" | "raw";

/** A parsed value plus the source text it came from (list items keep their own text). */
export interface Literal {
  kind: LiteralKind;
  /** JS value: null, boolean, number, string, or items' values for list/tuple. */
  value: null | boolean | number | string | unknown[];
  /** The exact source text of this value. */
  text: string;
  /** For list/tuple: the items. */
  items?: Literal[];
}

/** Python keywords that are literals rather than names (literal_eval keeps them). */
const CONSTANTS: Record<string, Pick<Literal, "kind" | "value">> = {
  True: { kind: "bool", value: true },
  False: { kind: "bool", value: false },
  None: { kind: "None", value: null },
};

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
// Python 3 numeric literals: no leading zeros on non-zero decimals, `_` between digits only.
const DIGITS = "[0-9](?:_?[0-9])*";
const FLOAT = new RegExp(
  `^(?:(?:${DIGITS})?\\.${DIGITS}(?:[eE][+-]?${DIGITS})?|${DIGITS}\\.(?:[eE][+-]?${DIGITS})?|${DIGITS}[eE][+-]?${DIGITS})`,
);
const INT = /^(?:0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|[1-9](?:_?[0-9])*|0(?:_?0)*)/;

class NotALiteral extends Error {}

class Parser {
  pos = 0;
  /** Tuples written without parentheses (`a, b`): inside `[...]` their items are the list's items. */
  readonly bareTuples = new WeakSet<Literal>();
  constructor(readonly src: string) {}

  fail(): never {
    throw new NotALiteral();
  }

  skipSpaces(): void {
    while (this.pos < this.src.length && (this.src[this.pos] === " " || this.src[this.pos] === "\t")) this.pos++;
  }

  peek(): string {
    return this.src[this.pos] ?? "";
  }

  /** expression := item (',' item)* [','] — a bare comma list is a tuple, as in Python. */
  expression(closer: string | null): Literal {
    const start = this.pos;
    const first = this.item();
    this.skipSpaces();
    if (this.peek() !== ",") return first;
    const items = [first];
    while (this.peek() === ",") {
      this.pos++;
      this.skipSpaces();
      if (this.pos >= this.src.length || this.peek() === closer) break; // trailing comma
      items.push(this.item());
      this.skipSpaces();
    }
    const tuple = this.sequence("tuple", items, start);
    this.bareTuples.add(tuple);
    return tuple;
  }

  sequence(kind: "list" | "tuple", items: Literal[], start: number): Literal {
    return { kind, value: items.map((i) => i.value), items, text: this.src.slice(start, this.pos).trim() };
  }

  /** item := ['+'|'-']* number | string | name | '[' ... ']' | '(' ... ')' */
  item(): Literal {
    this.skipSpaces();
    const start = this.pos;
    const c = this.peek();
    if (c === "[" || c === "(") return this.bracketed(c === "[" ? "]" : ")", start);
    if (c === "+" || c === "-") {
      this.pos++;
      const operand = this.item();
      // literal_eval allows unary +/- on numbers only.
      if (operand.kind !== "int" && operand.kind !== "float") this.fail();
      const value = c === "-" ? -(operand.value as number) : (operand.value as number);
      return { kind: operand.kind, value: value + 0, text: this.src.slice(start, this.pos) };
    }
    if (c === "'" || c === '"') return this.string(start);
    const rest = this.src.slice(this.pos);
    const number = FLOAT.exec(rest) ?? INT.exec(rest);
    if (number !== null && /^[0-9.]/.test(rest)) {
      this.pos += number[0].length;
      // A number glued to letters (`16G`, `1e3K`, `4x`) is a syntax error in Python: raw string.
      if (/^[A-Za-z0-9_.]/.test(this.src.slice(this.pos))) this.fail();
      const text = number[0];
      const isFloat = FLOAT.test(text) && !/^0[xXoObB]/.test(text);
      const value = isFloat ? Number(text.replaceAll("_", "")) : parseIntLiteral(text);
      return { kind: isFloat ? "float" : "int", value, text };
    }
    const name = NAME.exec(rest);
    if (name !== null) {
      this.pos += name[0].length;
      const text = name[0];
      // A bare name immediately followed by a quote is a string prefix (r"", b"", f""): give up.
      if (this.peek() === "'" || this.peek() === '"') this.fail();
      const constant = CONSTANTS[text];
      return constant ? { ...constant, text } : { kind: "str", value: text, text };
    }
    return this.fail();
  }

  bracketed(closer: "]" | ")", start: number): Literal {
    this.pos++; // opener
    this.skipSpaces();
    if (this.peek() === closer) {
      this.pos++;
      return this.sequence(closer === "]" ? "list" : "tuple", [], start);
    }
    const inner = this.expression(closer);
    this.skipSpaces();
    if (this.peek() !== closer) this.fail();
    this.pos++;
    if (closer === "]") {
      // `[a, b]` is a list of the comma-separated items; `[x]` a one-item list.
      const items = this.bareTuples.has(inner) ? inner.items! : [inner];
      return this.sequence("list", items, start);
    }
    // `(x)` is just x; `(x,)` and `(x, y)` are tuples.
    return inner.kind === "tuple" ? this.sequence("tuple", inner.items!, start) : { ...inner, text: this.src.slice(start, this.pos) };
  }

  string(start: number): Literal {
    const quote = this.peek();
    if (this.src.startsWith(quote.repeat(3), this.pos)) this.fail(); // triple quotes: not worth it
    this.pos++;
    let value = "";
    for (;;) {
      const c = this.src[this.pos++];
      if (c === undefined) this.fail();
      if (c === quote) break;
      if (c !== "\\") {
        value += c;
        continue;
      }
      const e = this.src[this.pos++];
      const simple: Record<string, string> = { n: "\n", t: "\t", r: "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0" };
      if (e in simple) value += simple[e];
      else if (e === "x" || e === "u") {
        const len = e === "x" ? 2 : 4;
        const hex = this.src.slice(this.pos, this.pos + len);
        if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== len) this.fail();
        value += String.fromCharCode(parseInt(hex, 16));
        this.pos += len;
      } else if (e === undefined) this.fail();
      else value += "\\" + e; // Python keeps unknown escapes verbatim
    }
    // Adjacent string literals concatenate ("a" "b" == "ab").
    this.skipSpaces();
    if (this.peek() === "'" || this.peek() === '"') {
      const next = this.string(this.pos);
      value += next.value as string;
    }
    return { kind: "str", value, text: this.src.slice(start, this.pos).trim() };
  }
}

function parseIntLiteral(text: string): number {
  const t = text.replaceAll("_", "").toLowerCase();
  if (t.startsWith("0o")) return parseInt(t.slice(2), 8);
  if (t.startsWith("0b")) return parseInt(t.slice(2), 2);
  return Number(t); // decimal and 0x…
}


/**
 * Parse one command-line value the way python-fire does.
 *
 * @example parseFireValue("5").value === 5; parseFireValue("[a,b]").value → ["a", "b"];
 *          parseFireValue("16G") → { kind: "raw", value: "16G" }
 */
export function parseFireValue(text: string): Literal {
  const raw: Literal = { kind: "raw", value: text, text };
  // Python refuses leading indentation in eval mode; an empty string is a syntax error too.
  if (text.length === 0 || text[0] === " " || text[0] === "\t") return raw;
  const parser = new Parser(text);
  try {
    const result = parser.expression(null);
    parser.skipSpaces();
    if (parser.pos !== text.length) return raw;
    return result;
  } catch (e) {
    if (e instanceof NotALiteral) return raw;
    throw e;
  }
}
