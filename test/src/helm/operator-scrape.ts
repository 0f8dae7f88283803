/**
 * What prometheus-operator makes of a ServiceMonitor or PodMonitor, for a real Prometheus to run:
 * the scrape job with the relabelings the operator (v0.93.0, pkg/prometheus/promcfg.go: read for
 * its behaviour, not copied) puts BEFORE the monitor's own, then the monitor's relabelings, and the
 * labels Kubernetes service discovery (role `endpoints` for a ServiceMonitor, the operator's
 * default; role `pod` for a PodMonitor) gives one target backed by a pod. Prometheus then does the
 * relabeling itself; the test reads the resulting `up` series.
 *
 * The operator's prefix, in its order: `job` copied to __tmp_prometheus_job_name; a running-pod
 * filter; `keep` rules for the selector (service labels for a ServiceMonitor, pod labels for a
 * PodMonitor: `(<values>);true` over label + labelpresent); `keep` on the endpoint's port name;
 * namespace/service/pod/container labels; `job` = the Service name (ServiceMonitor) or
 * `<namespace>/<name>` (PodMonitor), then `job` from the `jobLabel` label when one is set;
 * `endpoint` = the port name. The monitor's `relabelings` come after all of these.
 */
import type { K8sObject } from './harness.js';

export interface RelabelConfig {
  source_labels?: string[];
  separator?: string;
  regex?: string;
  target_label?: string;
  replacement?: string;
  action?: string;
}

/** The operator's sanitizeLabelName: every character outside [a-zA-Z0-9_] becomes `_`. */
export const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface MonitorEndpoint {
  port?: string;
  path?: string;
  relabelings?: Record<string, unknown>[];
}
export interface MonitorSpec {
  jobLabel?: string;
  selector: Selector;
  endpoints?: MonitorEndpoint[];
  podMetricsEndpoints?: MonitorEndpoint[];
}

/** A monitor's RelabelConfig (camelCase, as in the CRD) in Prometheus' own keys. */
export function prometheusRelabel(r: Record<string, unknown>): RelabelConfig {
  const keys: Record<string, keyof RelabelConfig> = { sourceLabels: 'source_labels', separator: 'separator', regex: 'regex', targetLabel: 'target_label', replacement: 'replacement', action: 'action' };
  const out: RelabelConfig = {};
  for (const [k, v] of Object.entries(r)) {
    const key = keys[k];
    if (!key) throw new Error(`relabeling field ${k} is not handled by this model of the operator`);
    (out as Record<string, unknown>)[key] = key === 'action' ? String(v).toLowerCase() : v;
  }
  return out;
}

function selectorRules(sel: Selector, prefix: string): RelabelConfig[] {
  const out: RelabelConfig[] = [];
  for (const k of Object.keys(sel.matchLabels ?? {}).sort()) {
    out.push({ action: 'keep', source_labels: [`${prefix}_label_${sanitize(k)}`, `${prefix}_labelpresent_${sanitize(k)}`], regex: `(${sel.matchLabels![k]});true` });
  }
  for (const e of sel.matchExpressions ?? []) {
    const src = [`${prefix}_label_${sanitize(e.key)}`, `${prefix}_labelpresent_${sanitize(e.key)}`];
    if (e.operator === 'In') out.push({ action: 'keep', source_labels: src, regex: `(${(e.values ?? []).join('|')});true` });
    else if (e.operator === 'NotIn') out.push({ action: 'drop', source_labels: src, regex: `(${(e.values ?? []).join('|')});true` });
    else if (e.operator === 'Exists') out.push({ action: 'keep', source_labels: [`${prefix}_labelpresent_${sanitize(e.key)}`], regex: 'true' });
    else if (e.operator === 'DoesNotExist') out.push({ action: 'drop', source_labels: [`${prefix}_labelpresent_${sanitize(e.key)}`], regex: 'true' });
  }
  return out;
}

/** The relabel_configs the operator generates for endpoint 0 of `monitor`. */
export function operatorRelabelConfigs(monitor: K8sObject): RelabelConfig[] {
  const spec = monitor['spec'] as MonitorSpec;
  const ns = monitor.metadata.namespace ?? '';
  const service = monitor.kind === 'ServiceMonitor';
  const ep = (service ? spec.endpoints : spec.podMetricsEndpoints)?.[0];
  if (!ep?.port) throw new Error(`${monitor.kind}/${monitor.metadata.name}: endpoint 0 has no port name`);
  const running: RelabelConfig = { action: 'drop', source_labels: ['__meta_kubernetes_pod_phase'], regex: '(Failed|Succeeded)' };
  const rules: RelabelConfig[] = [{ source_labels: ['job'], target_label: '__tmp_prometheus_job_name' }];
  if (service) {
    rules.push(...selectorRules(spec.selector, '__meta_kubernetes_service'));
    rules.push({ action: 'keep', source_labels: ['__meta_kubernetes_endpoint_port_name'], regex: ep.port });
    const target = ['__meta_kubernetes_endpoint_address_target_kind', '__meta_kubernetes_endpoint_address_target_name'];
    rules.push(
      { source_labels: target, separator: ';', regex: 'Node;(.*)', replacement: '${1}', target_label: 'node' },
      { source_labels: target, separator: ';', regex: 'Pod;(.*)', replacement: '${1}', target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      running,
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job', replacement: '${1}' },
    );
    if (spec.jobLabel) rules.push({ source_labels: [`__meta_kubernetes_service_label_${sanitize(spec.jobLabel)}`], target_label: 'job', regex: '(.+)', replacement: '${1}' });
  } else {
    rules.push(running, ...selectorRules(spec.selector, '__meta_kubernetes_pod'));
    rules.push({ action: 'keep', source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ep.port });
    rules.push(
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { target_label: 'job', replacement: `${ns}/${monitor.metadata.name}` },
    );
    if (spec.jobLabel) rules.push({ source_labels: [`__meta_kubernetes_pod_label_${sanitize(spec.jobLabel)}`], target_label: 'job', regex: '(.+)', replacement: '${1}' });
  }
  rules.push({ target_label: 'endpoint', replacement: ep.port });
  return [...rules, ...(ep.relabelings ?? []).map(prometheusRelabel)];
}

/** The job name the operator gives endpoint 0 of a monitor. */
export const operatorJobName = (m: K8sObject) => `${m.kind === 'ServiceMonitor' ? 'serviceMonitor' : 'podMonitor'}/${m.metadata.namespace ?? ''}/${m.metadata.name}/0`;

export interface PodTarget {
  readonly namespace: string;
  readonly pod: { name: string; labels: Record<string, string>; container: string; portName: string; phase: string };
  readonly service?: { name: string; labels: Record<string, string>; portName: string };
  /** host:port Prometheus scrapes. */
  readonly address: string;
}

/** The labels Kubernetes service discovery gives a pod-backed target (role endpoints with a Service, else role pod). */
export function discoveredLabels(t: PodTarget): Record<string, string> {
  const l: Record<string, string> = {
    __address__: t.address,
    __meta_kubernetes_namespace: t.namespace,
    __meta_kubernetes_pod_name: t.pod.name,
    __meta_kubernetes_pod_container_name: t.pod.container,
    __meta_kubernetes_pod_container_port_name: t.pod.portName,
    __meta_kubernetes_pod_phase: t.pod.phase,
  };
  for (const [k, v] of Object.entries(t.pod.labels)) {
    l[`__meta_kubernetes_pod_label_${sanitize(k)}`] = v;
    l[`__meta_kubernetes_pod_labelpresent_${sanitize(k)}`] = 'true';
  }
  if (t.service) {
    l['__meta_kubernetes_service_name'] = t.service.name;
    l['__meta_kubernetes_endpoint_port_name'] = t.service.portName;
    l['__meta_kubernetes_endpoint_address_target_kind'] = 'Pod';
    l['__meta_kubernetes_endpoint_address_target_name'] = t.pod.name;
    for (const [k, v] of Object.entries(t.service.labels)) {
      l[`__meta_kubernetes_service_label_${sanitize(k)}`] = v;
      l[`__meta_kubernetes_service_labelpresent_${sanitize(k)}`] = 'true';
    }
  }
  return l;
}
