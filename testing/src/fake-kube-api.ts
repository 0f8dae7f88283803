/**
 * A local HTTP stand-in of the Kubernetes API server for the scaler's tests (no real API server can
 * run here): it holds the `scale` of one Deployment (`ml/workers`), records every request (verb,
 * path, headers, body), applies merge patches of spec.replicas, and can answer with errors or not at all.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** The scale subresource of Deployment `workers` in namespace `ml`, the one the stand-in holds. */
export const SCALE_PATH = '/apis/apps/v1/namespaces/ml/deployments/workers/scale';

/** API server stand-in holding one Deployment's scale; `fail` answers the next requests with errors. */
export class FakeKubeApi {
  readonly requests: Recorded[] = [];
  replicas: number | undefined = 1;
  /** Status codes for the next requests (then normal service again). */
  fail: number[] = [];
  /** Status codes for the next PATCH requests. */
  failPatch: number[] = [];
  /** Never answer (to test the request timeout). */
  hang = false;
  private server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (this.hang) return;
        const json = (code: number, obj: unknown) => {
          res.writeHead(code, { 'content-type': 'application/json' });
          res.end(JSON.stringify(obj));
        };
        const code = this.fail.shift() ?? (req.method === 'PATCH' ? this.failPatch.shift() : undefined);
        if (code !== undefined) return json(code, { kind: 'Status', apiVersion: 'v1', status: 'Failure', code, message: `stand-in says ${code}` });
        if (req.url !== SCALE_PATH) return json(404, { kind: 'Status', code: 404, message: 'deployments.apps "x" not found' });
        if (req.method === 'PATCH') {
          const patch = JSON.parse(body) as { spec?: { replicas?: number } };
          if (patch.spec?.replicas !== undefined) this.replicas = patch.spec.replicas;
        } else if (req.method !== 'GET') return json(405, { kind: 'Status', code: 405 });
        // autoscaling/v1 Scale; spec.replicas is omitted when 0 (omitempty), as the real API does.
        json(200, {
          kind: 'Scale',
          apiVersion: 'autoscaling/v1',
          metadata: { name: 'workers', namespace: 'ml' },
          spec: this.replicas ? { replicas: this.replicas } : {},
          status: { replicas: this.replicas ?? 0, selector: 'app=w' },
        });
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  patches(): Recorded[] {
    return this.requests.filter((r) => r.method === 'PATCH');
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
