/**
 * Embedding sources: streaming .npy / parquet readers over local files, URLs and S3, grouped
 * into collections with bounded-memory batches and seeded sampling, plus the ids mapping writer.
 */
export { EmbeddingReadError, type EmbeddingReadErrorInfo } from "./errors.ts";
export { type ByteSource, CountingSource, FileSource, openSource, type ReadRecord, type SourceOpener } from "./source.ts";
export { HttpSource, listS3, openS3Source, parseS3Url } from "./source_remote.ts";
export { convertFloat16, convertFloat64, firstNonFinite, float16ToNumber, type NonFiniteScan } from "./float.ts";
export { NPY_CHUNK_BYTES, type NpyDtype, type NpyHeader, NpyReader, parseNpyHeader, readNpyHeader } from "./npy.ts";
export {
  type IdColumnSpec,
  type IdValues,
  type ParquetColumn,
  type ParquetColumnOptions,
  parquetFileBytes,
  type ParquetInfo,
  ParquetReader,
  readParquetInfo,
} from "./parquet.ts";
export { checkFileFormat, type FileFormat, listEmbeddingFiles } from "./discover.ts";
export { createRng, sampleRowIndices } from "./sample.ts";
export {
  type BatchOptions,
  type CollectionFile,
  type EmbeddingBatch,
  type EmbeddingCollection,
  type EmbeddingSample,
  openCollection,
  type OpenCollectionOptions,
} from "./collection.ts";
export { type ArrayCollectionOptions, collectionFromArray } from "./memory.ts";
export { IdsWriter, idsFileName, resetIdsFolder, writeIdsFile } from "./ids.ts";
