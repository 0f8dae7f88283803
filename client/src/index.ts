/**
 * @metaloop/client: what a program that talks to a coordinator needs, and nothing of the server.
 */
// The control API over the request/reply bus (submit, list, status, wait, control verbs, export, history, upload).
export { ApiClient, type ApiClientOptions, type FetchedBlob, type WaitOptions } from './client.js';
// Chunked uploads (the `upload` verb) on their own.
export { uploadBlob, type Uploaded, type UploadOptions } from './upload-client.js';
// The command-line frame of `metaloop` and `metaloop-coordinator`: NATS flags, logger, one-line errors, run and exit.
export {
  addNatsFlags,
  cliLogger,
  CONNECTION_HELP,
  exitQuietlyOnBrokenPipe,
  oneLineUsageErrors,
  runProgram,
  type GlobalOptions,
} from './program.js';
// Exit codes of every metaloop command and the error → code table.
export { EXIT, exitCodeFor, type ExitCode } from './exit-codes.js';
// Errors.
export { UsageError } from './errors.js';
