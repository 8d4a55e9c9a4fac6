import { CoreV1Api, KubeConfig, KubernetesObjectApi, type KubernetesObject, PatchStrategy, type RequestContext, type V1Node } from '@kubernetes/client-node';
import { POOL_LABEL } from './pool-nodes.ts';

export const FIELD_MANAGER = 'kiln';

/** Who Kiln is to a cluster's API server: a client certificate, its key, and the cluster CA that signed the server's. */
export interface ClusterCredentials {
  caPem: string;
  certificatePem: string;
  privateKeyPem: string;
}

/**
 * A KubeConfig whose requests share one connection pool. client-node 2.0.1 gives every request an undici Agent of
 * its own, so no request reuses a connection and each pays a TLS handshake with client authentication: two round
 * trips to the cluster's load balancer and the API server's CPU. This keeps the first request's Agent and hands it to
 * every later one (the Agents made meanwhile have opened nothing and are dropped).
 */
class PooledKubeConfig extends KubeConfig {
  private dispatcher: ReturnType<RequestContext['getDispatcher']>;

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const made = context.getDispatcher();
    if (made === undefined) return;
    this.dispatcher ??= made;
    context.setDispatcher(this.dispatcher);
  }
}

/**
 * A client configuration for one cluster's API endpoint, with Kiln's client
 * certificate; the server's certificate is verified against the cluster CA.
 */
export function kubeConfigFor(clusterName: string, endpoint: string, credentials: ClusterCredentials): KubeConfig {
  const config = new PooledKubeConfig();
  const base64 = (pem: string) => Buffer.from(pem).toString('base64');
  config.loadFromOptions({
    clusters: [{ name: clusterName, server: endpoint, caData: base64(credentials.caPem), skipTLSVerify: false }],
    users: [{ name: 'kiln', certData: base64(credentials.certificatePem), keyData: base64(credentials.privateKeyPem) }],
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
  /** The address the kubelet reports as InternalIP: on EC2, the machine's private address. */
  internalIP?: string;
}

function isReady(node: V1Node): boolean {
  return node.status?.conditions?.some((condition) => condition.type === 'Ready' && condition.status === 'True') ?? false;
}

export async function listNodes(config: KubeConfig): Promise<NodeSummary[]> {
  const core = config.makeApiClient(CoreV1Api);
  const nodes = await core.listNode({});
  return nodes.items.map((node) => {
    const labels = node.metadata?.labels ?? {};
    const pool = labels[POOL_LABEL];
    const ready = node.status?.conditions?.find((condition) => condition.type === 'Ready');
    const readyStatus = ready?.status === 'True' || ready?.status === 'False' ? ready.status : 'Unknown';
    const readySince = ready?.lastTransitionTime === undefined ? undefined : new Date(ready.lastTransitionTime).toISOString();
    const internalIP = node.status?.addresses?.find((address) => address.type === 'InternalIP')?.address;
    return {
      name: node.metadata?.name ?? '',
      role: 'node-role.kubernetes.io/control-plane' in labels ? 'control-plane' : 'worker',
      ...(pool === undefined ? {} : { pool }),
      ready: isReady(node),
      readyStatus,
      ...(readySince === undefined ? {} : { readySince }),
      ...(node.spec?.providerID === undefined ? {} : { providerID: node.spec.providerID }),
      kubeletVersion: node.status?.nodeInfo?.kubeletVersion ?? '',
      ...(internalIP === undefined ? {} : { internalIP }),
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
