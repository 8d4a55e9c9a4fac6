export { createCloudMocks, SANDBOX_ACCOUNT_ID, SandboxCloud, type MockCloudContext, type ProvisionedCluster, type RecordedResource, type RunTiming, type SandboxCloudOptions } from './cloud/index.ts';
export { ensureTable, freePort, LOCAL_AWS_ENVIRONMENT, LOCAL_CREDENTIALS, LOCAL_REGION, connectLocalDynamoDb, startLocalDynamoDb, waitFor, type LocalDynamoDb } from './dynamodb.ts';
export { FaultInjector, type TaskFaultRule } from './faults.ts';
export { kmsV2Plugin, startKmsService, type KmsService, type KmsServiceOptions } from './kms/index.ts';
export { kubeadmApiServerTls } from './api-server-tls.ts';
export { LOCAL_KMS_PLUGIN_IMAGE, SandboxContainerRegistry } from './container-registry.ts';
export { USER_DATA_LIMIT_BYTES, userDataText } from './cloud-init/validate.ts';
export { CONTROL_PLANE_LABEL, normalizeKubernetesVersion, POOL_LABEL, startSandboxCluster, type ApiServerTls, type AtRestProviderType, type ContinueExpiryRule, type KmsPlugin, type KubeFaultHandle, type KubeFaultRule, type KubeObject, type KubeObjectFilter, type KubeRequest, type KubeRequestRecord, type KubeStatusReason, type NodeConditionStatus, type NodeRegistration, type NodeRole, type NodeTaint, type SandboxCluster, type SandboxClusterFaults, type SandboxClusterOptions, type StoredSecretKey } from './kube/index.ts';
export {
  ETCDCTL_IN_ETCD,
  HOST_NAMESPACE,
  NAMESPACE_KINDS,
  RUNC_BINARY,
  RUNC_INIT_BINARY,
  STATIC_POD_CONTAINERS,
  loadTracingPolicy,
  loadedPolicies,
  playSteps,
  refusedContainerStart,
  runcInitSteps,
  type ContainerProcess,
  type KernelCall,
  type LoadedPolicy,
  type NamespaceKind,
  type PolicyLoad,
  type ProcessOutcome,
  type ProcessStep,
  type TracedTask,
} from './kube/index.ts';
export { LOCAL_EGRESS_ADDRESS, startLocalStack, type LocalStack, type LocalStackOptions } from './local-stack.ts';
export { startSsmService, type MachineCommandHandler, type SentCommand, type SsmService, type SsmServiceOptions } from './ssm/index.ts';
export { startStepFunctionsService, type EcsTaskHandler, type ExecutionHistoryEntry, type ExecutionStatus, type ExecutionView, type LambdaHandler, type StepFunctionsService, type StepFunctionsServiceOptions } from './stepfunctions/index.ts';
export { helmControllerCrds, startHelmController, type HelmControllerStandIn, type HelmControllerState } from './kube/helm-controller.ts';
export { startEc2Service, type Ec2Service } from './ec2/index.ts';
export { listenerSources, startNetworkLoadBalancer, type NetworkLoadBalancerOptions, type RefusedConnection, type SandboxNetworkLoadBalancer } from './elb/index.ts';
export { SandboxIam, type AwsScope } from './iam.ts';
export { BARE_MACHINE, SandboxMachines, groupsForOrder, type MachineGroupShape, type MachineImage, type SandboxInstance } from './machines.ts';
export { runEventSource, startSqsService, type EventSourceOptions, type SqsBatchHandler, type SqsQueueOptions, type SqsService } from './sqs/index.ts';
