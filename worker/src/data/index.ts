/**
 * `@metaloop/worker/data`: datasets without tfjs — layouts, decoding (sharp), packed files,
 * content hashes — for the CLI (`metaloop data`, the hash at submit) and the worker.
 */
export { checkDataset } from './check.js';
export { DATA_DIR_ENV, dataDir, resolveDataPath } from './data-dir.js';
export { bytesSha256, fileSha256, folderManifest, type FolderManifest } from './content-hash.js';
export { DECODE_PIPELINE, decodeImage, decoderVersions, type DecodeOptions } from './decode.js';
export { describeDataset, type DatasetInfo, type DatasetSplitInfo } from './describe.js';
export { isImageFile, readSplitCsv, scanImageFolder, SPLITS, type ImageClass, type ScannedImages, type ScannedLayout } from './image-layouts.js';
export { openImageSource, splitCounts, type ImageSource, type SourceClass, type SourceConfig } from './image-source.js';
export { packImages, type PackOptions, type PackResult } from './pack.js';
export { isPackedFile, PACK_BLOCK_ALIGN, PACK_EXTENSION, PACK_MAGIC, PACK_VERSION, readPackHeader, type PackClass, type PackHeader, type PackSplit, type PackSplitName } from './pack-format.js';
export { loadPacked, type PackedDataset, type PackedSplit } from './packed.js';
export { ENTITY_MARKERS, readTextDataset, tokenize, type TextClass, type TextDataset } from './text-datasets.js';
export { buildVocabulary, encode, PAD, UNK, type Vocabulary } from './vocab.js';
export { readGlove, type EmbeddingMatrix } from './glove.js';
export { textDataset } from '../tasks/text.js';
export { DatasetError } from '../errors.js';
