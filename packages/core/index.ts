export { ClusterPatch, FIXED_AT_CREATION, IMMUTABLE_ORDER_FIELDS, nodePoolChanges, type NodePoolChanges, immutableMembersOf, isPartlyMutable, MUTABLE_ORDER_FIELDS, MUTABLE_ORDER_MEMBERS, type MutableOrderField, type PartlyMutableField } from './cluster-patch.ts';
export { AccountSpec, AcmeIssuerSpec, AT_REST_PROVIDERS, AtRestEncryptionSpec, CertManagerSpec, ClusterSpec, ControlPlaneSpec, EncryptionSpec, ExtensionsSpec, MaintenanceSpec, NetworkSpec, NodeHealthSpec, NodePoolSpec, PodSecurityNamespaceSpec, PodSecuritySpec, PSA_LEVELS, PSA_MODES, SshSpec, Taint, TransparentEncryptionSpec, WEEKDAYS, type ClusterOrder } from './cluster-spec.ts';
export { namespacePodSecurityLevels, podSecurityLevels, stricterLevel, type PodSecurityLevel, type PodSecurityLevels, type PodSecurityMode } from './pod-security.ts';
export {
  ADDON_RELEASES,
  CIS_PROFILES,
  DEFAULT_KUBERNETES_VERSION,
  END_OF_LIFE_NOTICE_DAYS,
  KUBERNETES_RELEASES,
  MACHINE_OS_RELEASES,
  addonsBehind,
  kubernetesReleaseOf,
  kubernetesSupport,
  kubernetesUpgradeProblem,
  kubernetesVersionProblem,
  machineOsProblem,
  machineOsReleaseByVersion,
  machineOsReleaseOf,
  nextKubernetesMinor,
  offeredKubernetesReleases,
  offeredKubernetesSentence,
  versionSupportConditions,
  type AddonKey,
  type AddonRelease,
  type CisProfile,
  type CisProfileId,
  type KubernetesMinor,
  type KubernetesRange,
  type KubernetesRelease,
  type KubernetesSupport,
  type MachineOsRelease,
  type VersionSupportCondition,
} from './kubernetes-versions.ts';
export { ADMIN_SCOPE, API_KEY_SCOPES, ApiKeyScope, MAX_API_KEY_LIFETIME_MS, missingScopes, normalizedScopes, type OperationScope } from './scopes.ts';
export { ConflictError, ERROR_CODES, fieldProblemsOf, jsonPointer, KilnError, NotFoundError, QuotaExceededError, StepError, UnauthorizedError, UnprocessableError, ValidationError, validationErrorOf, type ErrorCode, type FieldProblem, type InputTarget } from './errors.ts';
export { firstIdAt, ID_PREFIXES, idPattern, newId, type IdKind } from './ids.ts';
export { assertOrderRules, cidrsOverlap, EXTERNAL_ID_ROUTE, orderProblems, type OrderProblem, type OrderRuleOptions } from './order-rules.ts';
export { canTransition, CLUSTER_PHASES, OPERATION_STATES, OPERATION_TYPES, STEP_STATES, WORKFLOW_BRANCH_STEPS, WORKFLOW_STEPS, workflowOf, workflowStepOrder, type ClusterPhase, type WorkflowOf, type OperationState, type OperationType, type StepState } from './phases.ts';
export { Cluster, CLUSTER_EVENT_TYPES, ClusterNode, ClusterNodeList, NodeObservation, NodeRemediation, RemediationTarget, clusterEvent, tenantWideEvent, TenantWideEvent, TENANT_EVENT_TYPES, EVENT_TYPES, type EventType, ClusterEvent, ClusterStatus, Condition, KubernetesVersion, KubernetesVersionList, Operation, OperationStep, phaseChange, operationEvent, PlannedMachine, AccountTrust, ApiKey, ApiKeyCreated, ApiKeyList, ApiKeyOrder, EventFeedPage, TenantEvent, Problem, Tenant, TenantCreated, TenantOrder, WorkflowInput } from './resources.ts';
export { createLogger, NO_METRICS, redact, type LogFields, type Logger, type LogLevel, type Metrics } from './log.ts';
export { problemFor, problemType } from './problem.ts';
export { accountRoleRefused, isAssumeRoleRefusal, tenantFailureDetail, withoutInternalIdentifiers, type FailureCause } from './tenant-failure.ts';
export { applyMergePatch } from './merge-patch.ts';
export { cidrBlock, ipv4ToNumber, numberToIpv4, type Ipv4Block } from './ipv4.ts';
export { isRecord, KMS_PLUGIN_IMAGE_REFERENCE, sameJson, sha256 } from './values.ts';
export { EVENT_DATA_V1, TYPED_EVENTS, TypedTenantEvent, UsagePeriod, UsageRow } from './event-data.ts';
export { USAGE_GRANULARITIES, UsageReport } from './usage.ts';
export { WebhookDelivery, WebhookEndpoint, WebhookEndpointCreated, WebhookEndpointOrder, WebhookEndpointUpdate } from './webhooks.ts';
export { DEFAULT_INFRASTRUCTURE_CONCURRENCY, DEFAULT_QUOTAS, DEFAULT_RATE_POLICY, QuotaUsage, Quotas, countedNodes, type RateDecision, type RatePolicy } from './limits.ts';
export { remember } from './remember.ts';
export { KUBECONFIG_ACCESS, KUBECONFIG_GROUPS, KUBECONFIG_MAX_MINUTES, kubeconfigUser, type KubeconfigAccess } from './cluster-access.ts';
export { CLUSTER_TAG, KILN_IAM_PATH, SSM_AGENT_ACTIONS, TENANT_TAG } from './aws-identities.ts';
