export { createCloudMocks, SANDBOX_ACCOUNT_ID, SandboxCloud, type MockCloudContext, type ProvisionedCluster, type RecordedResource, type RunTiming, type SandboxCloudOptions } from './cloud/index.ts';
export { ensureTable, freePort, LOCAL_CREDENTIALS, LOCAL_REGION, startLocalDynamoDb, waitFor, type LocalDynamoDb } from './dynamodb.ts';
export { FaultInjector, type TaskFaultRule } from './faults.ts';
export { kmsV2Plugin, startKmsService, type KmsService, type KmsServiceOptions } from './kms/index.ts';
export { CONTROL_PLANE_LABEL, normalizeKubernetesVersion, POOL_LABEL, startSandboxCluster, type AtRestProviderType, type ContinueExpiryRule, type KmsPlugin, type KubeFaultHandle, type KubeFaultRule, type KubeObject, type KubeObjectFilter, type KubeRequest, type KubeRequestRecord, type KubeStatusReason, type NodeConditionStatus, type NodeRegistration, type NodeRole, type NodeTaint, type SandboxCluster, type SandboxClusterFaults, type SandboxClusterOptions, type StoredSecretKey } from './kube/index.ts';
export { startLocalStack, type LocalStack, type LocalStackOptions } from './local-stack.ts';
export { startSsmService, type MachineCommandHandler, type SsmService, type SsmServiceOptions } from './ssm/index.ts';
export { startStepFunctionsService, type EcsTaskHandler, type ExecutionHistoryEntry, type ExecutionStatus, type ExecutionView, type LambdaHandler, type StepFunctionsService, type StepFunctionsServiceOptions } from './stepfunctions/index.ts';
export { startChartRunner } from './kube/helm-charts.ts';
