export { API_SERVER_ADDRESS, LOAD_BALANCER_ADDRESS, startSandboxCluster, normalizeKubernetesVersion } from './cluster.ts';
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
export {
  ETCDCTL_IN_ETCD,
  RUNC_BINARY,
  RUNC_INIT_BINARY,
  STATIC_POD_CONTAINERS,
  loadedPolicies,
  playSteps,
  refusedContainerStart,
  refusedStaticPods,
  runcInitSteps,
  type ContainerProcess,
  type ProcessOutcome,
  type ProcessStep,
} from './runtime-security.ts';
export { HOST_NAMESPACE, NAMESPACE_KINDS, loadTracingPolicy, type KernelCall, type LoadedPolicy, type NamespaceKind, type PolicyLoad, type TracedTask } from './tetragon.ts';
