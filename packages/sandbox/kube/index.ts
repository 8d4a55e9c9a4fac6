export { startSandboxCluster, normalizeKubernetesVersion } from './cluster.ts';
export type { FaultHandle, FaultRule, ObjectFilter, RequestRecord, SandboxCluster, SandboxClusterOptions, SandboxFaults } from './cluster.ts';
export type { SandboxRequest } from './http.ts';
export type { Json, JsonObject } from './json.ts';
export { CONTROL_PLANE_LABEL, POOL_LABEL } from './nodes.ts';
export type { ConditionStatus, NodeRegistration, NodeRole, NodeTaint } from './nodes.ts';
export type { StatusReason } from './status.ts';
