import { type ClusterSpec, StepError } from '#core';
import type { SecretSealer } from '#encryption';
import { updateCluster } from '#services';
import type { StepServices } from './context.ts';
import type { StepContext } from './step-runner.ts';

/** When the order's rotationPeriodDays asks for the next key rotation, counted from `from`. */
export function nextRotation(spec: ClusterSpec, from: Date): { nextRotationAt?: string } {
  const days = spec.encryption.atRest.rotationPeriodDays;
  return days === undefined ? {} : { nextRotationAt: new Date(from.getTime() + days * 24 * 60 * 60 * 1000).toISOString() };
}

/** The id of the at-rest key a cluster starts with; rotations name the next ones key-2, key-3, … */
export const FIRST_AT_REST_KEY = 'key-1';

/**
 * Unseals a secret the cluster already has, or makes, seals and stores a new one: re-running the step changes nothing.
 * Kiln's own sealing key wraps it unless `sealer` says otherwise (at-rest data keys use the cluster's key).
 */
export async function sealedSecret(
  services: StepServices,
  context: StepContext,
  name: string,
  create: () => Promise<string> | string,
  sealer: SecretSealer = services.sealer,
): Promise<string> {
  const { tenantId, clusterId } = context.input;
  const encryptionContext = { tenantId, clusterId, purpose: name };
  const current = await services.store.getCluster(tenantId, clusterId);
  const existing = current?.sealed?.[name];
  if (existing !== undefined) return Buffer.from(await sealer.unseal(existing, encryptionContext)).toString('utf8');
  const value = await create();
  const sealed = await sealer.seal(Buffer.from(value), encryptionContext);
  await updateCluster(services, tenantId, clusterId, (cluster) => ({ ...cluster, sealed: { ...cluster.sealed, [name]: sealed } }));
  return value;
}

/** The cluster's own KMS key, which the infrastructure step records. */
export function clusterKeyOf(cluster: StepContext['cluster'], step: string): string {
  if (cluster.clusterKeyArn === undefined) throw new StepError(step, 'The cluster has no KMS key yet: the infrastructure step has not run.', false);
  return cluster.clusterKeyArn;
}

export function atRestKeySealer(services: StepServices, cluster: StepContext['cluster'], step: string): SecretSealer {
  return services.inCluster(cluster).sealer(clusterKeyOf(cluster, step));
}
