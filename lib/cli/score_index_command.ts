/** `autofaiss score_index`: maps the CLI parameters onto `scoreIndex` and reports like Python. */
import { scoreIndex } from "../commands/score_index.ts";
import { cliReporter } from "./reporter.ts";
import type { CommandContext } from "./commands.ts";
import type { ScoreIndexParams } from "../commands/schema.ts";

/** Exit code when the memory headroom rule stops scoring (Python returns None). */
export const EXIT_NOT_ENOUGH_MEMORY = 1;

export async function run(p: ScoreIndexParams, ctx: CommandContext): Promise<number> {
  const r = await scoreIndex(p.index_path, p.embeddings, {
    saveOnDisk: p.save_on_disk,
    outputIndexInfoPath: p.output_index_info_path,
    currentMemoryAvailable: String(p.current_memory_available),
    fileFormat: p.file_format,
    // Unless named, the parquet column is found: "embedding", "embeddings" or the only list column.
    embeddingColumnName: ctx.given.has("embedding_column_name") ? p.embedding_column_name : null,
    useCache: p.use_cache,
    cacheDir: p.cache_dir,
    reportPath: p.report_path,
    reporter: cliReporter(ctx),
  });
  if (r.infos === null) {
    ctx.err(`autofaiss ${ctx.command.name}: error: ${r.reason}\n`);
    return EXIT_NOT_ENOUGH_MEMORY;
  }
  return 0;
}
