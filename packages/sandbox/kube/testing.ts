import { ApiException, CoreV1Api, KubeConfig, type KubernetesObject, KubernetesObjectApi, type V1ObjectMeta } from '@kubernetes/client-node';
import type { SandboxCluster } from './cluster.ts';
import { type JsonObject, isObject, toJson } from './json.ts';

/** A generic object for KubernetesObjectApi calls, for kinds (custom resources) client-node has no model class for. */
export class Manifest implements KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: V1ObjectMeta;
}

/**
 * Plain manifest data as an instance of a client-node model class, which its typed APIs (and the lint rule against
 * passing literals where class instances are expected) ask for; the server only ever sees the JSON.
 */
export function manifest<T extends object>(model: new () => T, data: JsonObject): T {
  return Object.assign(new model(), structuredClone(data));
}

/** A client-node result as plain JSON data, dates as RFC 3339 strings, for comparing with expected objects. */
export function plain(value: unknown): JsonObject {
  const json = toJson(value);
  if (!isObject(json)) throw new Error('expected an object');
  return json;
}

/** The clients production code builds, pointed at a sandbox cluster. Test support only. */
export function clientsFor(cluster: SandboxCluster): { config: KubeConfig; core: CoreV1Api; objects: KubernetesObjectApi } {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: cluster.name, server: cluster.url, skipTLSVerify: true }],
    users: [{ name: 'admin', token: 'sandbox' }],
    contexts: [{ name: cluster.name, cluster: cluster.name, user: 'admin' }],
    currentContext: cluster.name,
  });
  return { config, core: config.makeApiClient(CoreV1Api), objects: KubernetesObjectApi.makeApiClient(config) };
}

/** The Status a failed call carried, parsed the way callers of client-node parse ApiException.body. */
export function statusOf(error: unknown): JsonObject {
  if (!(error instanceof ApiException)) throw new Error(`expected an ApiException, got ${String(error)}`);
  const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
  if (!isObject(body)) throw new Error('the ApiException carried no Status object');
  return body;
}

/** Resolves with the error a promise rejects with; fails if it resolves. */
export async function failureOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to fail, but it succeeded');
}

/** Polls a condition until it holds or the deadline passes. */
export async function waitUntil(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * The Cilium agent's DaemonSet as its chart deploys it (cilium/cilium@v1.20.2 install/kubernetes/cilium: host network,
 * values.yaml `tolerations: [{operator: Exists}]`), for tests that need nodes to turn Ready without running the chart.
 */
export function runCniAgent(cluster: SandboxCluster): void {
  const labels = { 'k8s-app': 'cilium' };
  cluster.writeObject(
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'cilium', namespace: 'kube-system', labels },
      spec: {
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { hostNetwork: true, tolerations: [{ operator: 'Exists' }], containers: [{ name: 'cilium-agent', image: 'quay.io/cilium/cilium:v1.20.2' }] } },
      },
    },
    'helm',
  );
}

/** Tetragon's TracingPolicy CRD, as its chart installs it, for tests that store policies without running the chart. */
export const TRACING_POLICY_CRD: JsonObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'tracingpolicies.cilium.io' },
  spec: {
    group: 'cilium.io',
    scope: 'Cluster',
    names: { kind: 'TracingPolicy', plural: 'tracingpolicies', singular: 'tracingpolicy', listKind: 'TracingPolicyList' },
    versions: [{ name: 'v1alpha1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
  },
};
