// What the API and the scheduled functions call. Nothing here loads the infrastructure program, the
// Kubernetes client or the add-on installer (lint and `npm run build` keep it so).
export {
  AT_REST_KEY,
  PENDING_USER_AT_REST_KEY,
  deleteCluster,
  findCluster,
  findClusterMatching,
  launch,
  listClusters,
  newOperation,
  orderCluster,
  type IdempotentRequest,
  type Outcome,
} from './clusters.ts';
export type { KilnServices } from './context.ts';
export { EVENT_FEED_SETTLE_SECONDS, listClusterEvents, listTenantEvents } from './events.ts';
export { listClusterNodes } from './nodes.ts';
export { failureCause, FailureInput, failureMessage, logFailure, operationFailure, recordFailureStep } from './failures.ts';
export { awaitInfrastructureSlot, dispatchInfrastructureSlots, releaseInfrastructureSlot } from './infrastructure-slots.ts';
export { issueKubeconfig, type IssuedKubeconfig, type KubeconfigRequest } from './kubeconfig.ts';
export { checkKubernetesVersionSupport, listKubernetesVersions, versionSupportEvents, withVersionSupport, type VersionSupportReport } from './kubernetes-versions.ts';
export { updateCluster, updateOperation, withCondition } from './mutations.ts';
export { findOperation, listClusterOperations } from './operations.ts';
export { recoverOperations, type RecoveryReport } from './recovery.ts';
export { startDueRotations, startKeyRotation, type ScheduledRotations } from './rotations.ts';
export { CERTIFICATE_RENEWAL_DAYS, certificatesDue, renewCertificates, startDueCertificateRenewals, type ScheduledRenewals } from './certificates.ts';
export { SSH_KEY_PURPOSE, downloadSshKey, fingerprintOf, type SshKeyDownload } from './ssh-keys.ts';
export { RequestAdmission, type TenantPrincipal, type VerifiedKey } from './admission.ts';
export { accountTrust, authenticate, createApiKey, createTenant, listApiKeys, resumeTenant, revokeApiKey, suspendTenant, tenantExternalId, type ApiKeyRequest, type Principal } from './tenants.ts';
export { beginUpdate, updateBranches, updateClusterSpec } from './updates.ts';
export { insideMaintenanceWindow, startDueKubernetesUpgrades, type ScheduledUpgrades } from './kubernetes-upgrades.ts';
export { clusterView, operationView } from './views.ts';
export { WorkflowLauncher, type ExecutionStatus, type WorkflowName, type Workflows } from './workflows.ts';
export {
  createWebhookEndpoint,
  deleteWebhookEndpoint,
  getWebhookEndpoint,
  listWebhookDeliveries,
  listWebhookEndpoints,
  replayWebhookDeliveries,
  rotateWebhookSecret,
  SECRET_OVERLAP_HOURS,
  sendTestWebhook,
  updateWebhookEndpoint,
} from './webhooks.ts';
export { USAGE_SETTLE_MINUTES, endClusterUsage, getUsage, meterCluster, reportUsage, usageOfHour, type MeteredMachine } from './usage.ts';
export { ADMIN_BUCKET, getQuotaUsage, ratePolicy, rateLimitHeaders, takeRequestToken, withinQuota } from './limits.ts';
