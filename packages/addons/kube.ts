import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject, PatchStrategy, type V1Node } from '@kubernetes/client-node';

export const FIELD_MANAGER = 'kiln';

/**
 * A client configuration for one cluster's API endpoint. Credentials come
 * from the cluster's PKI once the bootstrap package issues them; the endpoint
 * alone is enough for the sandbox API server.
 */
export function kubeConfigFor(clusterName: string, endpoint: string): KubeConfig {
  const config = new KubeConfig();
  // client-node refuses plain http unless told there is no TLS to verify; https is always verified.
  const plainHttp = new URL(endpoint).protocol === 'http:';
  config.loadFromOptions({
    clusters: [{ name: clusterName, server: endpoint, skipTLSVerify: plainHttp }],
    users: [{ name: 'kiln' }],
    contexts: [{ name: clusterName, cluster: clusterName, user: 'kiln' }],
    currentContext: clusterName,
  });
  return config;
}

export interface NodeSummary {
  name: string;
  role: 'control-plane' | 'worker';
  pool?: string;
  ready: boolean;
  /** The Ready condition's status, and since when it has it (absent until the kubelet reports). */
  readyStatus: 'True' | 'False' | 'Unknown';
  readySince?: string;
  /** `aws:///<zone>/<instance-id>`, as the kubelet was told at boot. */
  providerID?: string;
  /** `v1.35.9`, as the node's kubelet reports it. */
  kubeletVersion: string;
}

function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false;
}

export async function listNodes(config: KubeConfig): Promise<NodeSummary[]> {
  const core = config.makeApiClient(CoreV1Api);
  const nodes = await core.listNode({});
  return nodes.items.map((node) => {
    const labels = node.metadata?.labels ?? {};
    const pool = labels['kiln.dev/pool'];
    const ready = node.status?.conditions?.find((condition) => condition.type === 'Ready');
    const readyStatus = ready?.status === 'True' || ready?.status === 'False' ? ready.status : 'Unknown';
    const readySince = ready?.lastTransitionTime === undefined ? undefined : new Date(ready.lastTransitionTime).toISOString();
    return {
      name: node.metadata?.name ?? '',
      role: 'node-role.kubernetes.io/control-plane' in labels ? 'control-plane' : 'worker',
      ...(pool === undefined ? {} : { pool }),
      ready: isReady(node),
      readyStatus,
      ...(readySince === undefined ? {} : { readySince }),
      ...(node.spec?.providerID === undefined ? {} : { providerID: node.spec.providerID }),
      kubeletVersion: node.status?.nodeInfo?.kubeletVersion ?? '',
    };
  });
}

/** A Kubernetes object as Kiln renders it: plain data, validated before it is applied. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/**
 * client-node serializes built-in kinds through its models, whose JSON-schema
 * type names the `x-kubernetes-*` keys with underscores and silently drops the
 * wire spelling. A CRD would lose `x-kubernetes-preserve-unknown-fields` and
 * the API server would prune its objects, so CRDs are handed over in the
 * model's spelling, which it maps back on the wire.
 */
function forClientNode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(forClientNode);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key.startsWith('x-kubernetes-') ? key.replaceAll('-', '_') : key, forClientNode(field)]));
}

/** Server-side apply with Kiln's field manager; force, because Kiln owns what it applies. */
export async function applyObjects(config: KubeConfig, objects: readonly Manifest[]): Promise<KubernetesObject[]> {
  const client = KubernetesObjectApi.makeApiClient(config);
  const applied: KubernetesObject[] = [];
  for (const object of objects) {
    const body = object.kind === 'CustomResourceDefinition' ? (forClientNode(object) as Manifest) : object;
    applied.push(await client.patch(body, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply));
  }
  return applied;
}

export async function readObject(config: KubeConfig, object: Manifest): Promise<KubernetesObject> {
  const client = KubernetesObjectApi.makeApiClient(config);
  return client.read({
    apiVersion: object.apiVersion,
    kind: object.kind,
    metadata: { name: object.metadata.name, ...(object.metadata.namespace === undefined ? {} : { namespace: object.metadata.namespace }) },
  });
}
