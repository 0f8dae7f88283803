export { runLocal, workerArgs, workerBinPath, type LocalOptions, type LocalResult } from './local.js';
export { summaryJson } from './format.js';
export { renderReport, type ReportInput } from './report.js';
export { loadRunSpec, type LoadedRunSpec } from './spec-file.js';
export { saveKerasExports, KERAS_FILE, TFJS_DIR } from './keras/export.js';
