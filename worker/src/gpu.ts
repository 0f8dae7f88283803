/**
 * Which GPU a worker computes on: its name, memory, driver and compute capability, for heartbeats,
 * `metaloop workers`, the `metaloop_worker_gpu_info` metric and `--self-test`.
 *
 * libtensorflow only says whether it found a GPU (tfjs-node's `isUsingGpuDevice`), not which one,
 * so the details come from `nvidia-smi` (the NVIDIA container runtime mounts it with the `utility`
 * driver capability; the images set NVIDIA_DRIVER_CAPABILITIES=compute,utility). tfjs-node's binding
 * keeps the LAST GPU of TensorFlow's device list, i.e. the last CUDA-visible one: that is the one
 * reported. A worker that computes on a CPU reports NO_GPU, whatever nvidia-smi lists (and says in
 * `unusedGpus` what it saw, the usual sign that the CUDA libraries did not load).
 */
import { execFile } from 'node:child_process';
import type { Logger } from '@metaloop/shared';
import type { BackendInfo } from './backend.js';

/** The name reported by a worker that computes on a CPU. */
export const NO_GPU = 'no GPU';

export interface GpuInfo {
  /** e.g. 'NVIDIA H100 80GB HBM3'. */
  readonly name: string;
  /** Total memory of the device in bytes; 0 when unknown. */
  readonly memoryBytes: number;
  /** NVIDIA driver version, e.g. '550.54.15'; '' when unknown. */
  readonly driver: string;
  /** Compute capability, e.g. '9.0'; '' when unknown (drivers before ~510 cannot report it). */
  readonly computeCapability: string;
}

export interface GpuReport {
  /** The GPU the worker computes on; undefined on a CPU. */
  readonly gpu: GpuInfo | undefined;
  /** GPUs nvidia-smi lists that the backend does not use (only filled when the backend runs on a CPU). */
  readonly unusedGpus: readonly GpuInfo[];
  /** Why the details are missing or partial ('' when complete or when there is no GPU). */
  readonly note: string;
}

/** The heartbeat's GPU fields (shared/proto Heartbeat: gpu_name, gpu_memory_bytes, gpu_driver, gpu_compute_capability). */
export interface HeartbeatGpuFields {
  gpuName: string;
  gpuMemoryBytes: number;
  gpuDriver: string;
  gpuComputeCapability: string;
}

/** `gpu`, or the record of a worker without one (name NO_GPU, nothing else known). */
export function gpuOrNone(gpu: GpuInfo | undefined): GpuInfo {
  return gpu ?? { name: NO_GPU, memoryBytes: 0, driver: '', computeCapability: '' };
}

export function heartbeatGpuFields(gpu: GpuInfo | undefined): HeartbeatGpuFields {
  const g = gpuOrNone(gpu);
  return { gpuName: g.name, gpuMemoryBytes: g.memoryBytes, gpuDriver: g.driver, gpuComputeCapability: g.computeCapability };
}

/** '80 GiB', '79.6 GiB', '512 MiB'. */
export function formatBytes(bytes: number): string {
  if (!(bytes > 0)) return '';
  const gib = bytes / 2 ** 30;
  if (gib >= 1) return `${Number(gib.toFixed(gib >= 100 ? 0 : 1))} GiB`;
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}

/** One line: 'NVIDIA H100 80GB HBM3, 79.6 GiB, sm_90, driver 550.54.15' or 'no GPU'. */
export function describeGpuLine(gpu: GpuInfo | undefined): string {
  if (!gpu) return NO_GPU;
  const parts = [gpu.name, formatBytes(gpu.memoryBytes), gpu.computeCapability ? `sm_${gpu.computeCapability.replace('.', '')}` : '', gpu.driver ? `driver ${gpu.driver}` : ''];
  return parts.filter((p) => p !== '').join(', ');
}

interface SmiRow extends GpuInfo {
  readonly index: string;
  readonly uuid: string;
}

const FIELDS = ['index', 'uuid', 'name', 'memory.total', 'driver_version', 'compute_cap'] as const;

/**
 * Parse `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version[,compute_cap]
 * --format=csv,noheader,nounits` (memory in MiB). Rows that do not parse are skipped.
 */
export function parseNvidiaSmi(csv: string): SmiRow[] {
  const rows: SmiRow[] = [];
  for (const line of csv.split('\n')) {
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length < 5 || !/^\d+$/.test(cells[0]!)) continue;
    const [index, uuid, name, mem, driver, cc] = cells as [string, string, string, string, string, string | undefined];
    const mib = Number(mem);
    const known = (v: string | undefined) => (v === undefined || /^\[.*\]$|^N\/A$/i.test(v) ? '' : v);
    rows.push({
      index,
      uuid,
      name,
      memoryBytes: Number.isFinite(mib) && mib > 0 ? mib * 2 ** 20 : 0,
      driver: known(driver),
      computeCapability: known(cc),
    });
  }
  return rows;
}

/**
 * The GPUs CUDA makes visible, in CUDA's order: CUDA_VISIBLE_DEVICES lists indices or UUIDs
 * (a prefix of 'GPU-…' is enough); unset means all; an entry that matches nothing ends the list
 * (CUDA ignores the rest). nvidia-smi itself ignores CUDA_VISIBLE_DEVICES.
 */
export function visibleGpus<T extends { readonly index: string; readonly uuid: string }>(rows: readonly T[], cudaVisibleDevices: string | undefined): T[] {
  if (cudaVisibleDevices === undefined) return [...rows];
  const out: T[] = [];
  for (const raw of cudaVisibleDevices.split(',')) {
    const id = raw.trim();
    const row = /^\d+$/.test(id) ? rows.find((r) => r.index === id) : id ? rows.find((r) => r.uuid.startsWith(id)) : undefined;
    if (!row) break;
    out.push(row);
  }
  return out;
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, windowsHide: true }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${(stderr || err.message).trim().split('\n')[0]}`));
      else resolve(stdout);
    });
  });
}

export interface QueryGpusOptions {
  /** The nvidia-smi executable; default METALOOP_NVIDIA_SMI or 'nvidia-smi' (from PATH). */
  readonly nvidiaSmi?: string;
  readonly timeoutMs?: number;
}

/** Every GPU nvidia-smi lists, or the reason it could not tell. */
export async function queryGpus(options: QueryGpusOptions = {}): Promise<{ rows: SmiRow[]; error: string }> {
  const smi = options.nvidiaSmi ?? (process.env.METALOOP_NVIDIA_SMI || 'nvidia-smi');
  const timeoutMs = options.timeoutMs ?? 10_000;
  const query = (fields: readonly string[]) => run(smi, [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'], timeoutMs);
  try {
    return { rows: parseNvidiaSmi(await query(FIELDS)), error: '' };
  } catch (first) {
    // Drivers older than ~510 do not know compute_cap: ask again without it.
    try {
      return { rows: parseNvidiaSmi(await query(FIELDS.slice(0, -1))), error: '' };
    } catch {
      const msg = (first as Error).message;
      return { rows: [], error: /ENOENT/.test(msg) ? `${smi} not found` : msg };
    }
  }
}

const strip = ({ name, memoryBytes, driver, computeCapability }: GpuInfo): GpuInfo => ({ name, memoryBytes, driver, computeCapability });

/** What the worker reports for `backend`: the GPU it computes on (nvidia-smi's view of it) or none. */
export async function describeGpu(backend: BackendInfo, options: QueryGpusOptions & { readonly env?: NodeJS.ProcessEnv } = {}): Promise<GpuReport> {
  const env = options.env ?? process.env;
  // Only a native backend can sit on an NVIDIA GPU; wasm and cpu never do (no nvidia-smi call).
  if (backend.name !== 'tensorflow') return { gpu: undefined, unusedGpus: [], note: '' };
  const { rows, error } = await queryGpus(options);
  const visible = visibleGpus(rows, env.CUDA_VISIBLE_DEVICES);
  if (!backend.gpu) return { gpu: undefined, unusedGpus: visible.map(strip), note: '' };
  const used = visible[visible.length - 1];
  if (used) return { gpu: strip(used), unusedGpus: [], note: '' };
  return {
    gpu: { name: 'NVIDIA GPU (details unknown)', memoryBytes: 0, driver: '', computeCapability: '' },
    unusedGpus: [],
    note: error ? `libtensorflow computes on a GPU but ${error}` : 'libtensorflow computes on a GPU that nvidia-smi does not list',
  };
}

/**
 * The GPU a worker reports: `override` when given (null = none; for hosts without nvidia-smi, and
 * tests), else describeGpu(). Logs what an operator should know: GPUs present but unused (the CUDA
 * libraries did not load) or a GPU whose details nvidia-smi could not give.
 */
export async function resolveGpu(backend: BackendInfo, override: GpuInfo | null | undefined, logger: Logger): Promise<GpuInfo | undefined> {
  if (override !== undefined) return override ?? undefined;
  const report = await describeGpu(backend);
  if (report.note) logger.warn('GPU details incomplete', { note: report.note });
  if (report.unusedGpus.length > 0) {
    logger.warn('GPUs present but libtensorflow computes on the CPU: the CUDA libraries did not load (see TensorFlow\'s log above; docs/gpu.md)', {
      gpus: report.unusedGpus.map(describeGpuLine).join('; '),
    });
  }
  return report.gpu;
}
