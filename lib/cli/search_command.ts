/** `autofaiss search`: maps the CLI parameters onto `searchIndex`; JSON lines on stdout. */
import { searchIndex } from "../commands/search.ts";
import type { SearchParams } from "../commands/schema.ts";
import type { CommandContext } from "./commands.ts";

/** `autofaiss search`: JSON lines on stdout, a count on the log. */
export async function run(p: SearchParams, ctx: CommandContext): Promise<number> {
  const r = await searchIndex({
    indexPath: p.index_path,
    queries: p.queries,
    k: p.k,
    indexParam: p.index_param,
    idsPath: p.ids_path,
    mmap: p.mmap,
    write: (line) => ctx.out(line + "\n"),
  });
  ctx.log.info(`Searched ${r.queries} queries in ${r.parts} index file${r.parts === 1 ? "" : "s"}`);
  return 0;
}
