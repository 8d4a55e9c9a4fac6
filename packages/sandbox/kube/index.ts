export { startSandboxCluster, normalizeKubernetesVersion } from './cluster.ts';
export type {
  ApiServerTls,
  ContinueExpiryRule,
  KubeFaultHandle,
  KubeFaultRule,
  KubeObjectFilter,
  KubeRequestRecord,
  SandboxCluster,
  SandboxClusterFaults,
  SandboxClusterOptions,
} from './cluster.ts';
export type { AtRestProviderType, KmsPlugin, StoredSecretKey } from './encryption-at-rest.ts';
export type { KubeRequest } from './http.ts';
export type { JsonObject as KubeObject } from './json.ts';
export { CONTROL_PLANE_LABEL, POOL_LABEL } from './nodes.ts';
export type { NodeConditionStatus, NodeRegistration, NodeRole, NodeTaint } from './nodes.ts';
export type { StatusReason as KubeStatusReason } from './status.ts';
