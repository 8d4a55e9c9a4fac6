import { randomBytes } from 'node:crypto';
import {
  type ClusterPkiPem,
  type MachineRole,
  bootstrapTokenId,
  encryptionConfiguration,
  firstServiceIp,
  generateClusterPki,
  joinMaterial,
  newBootstrapToken,
  pkiToPem,
  toYamlDocuments,
} from '#bootstrap';
import { StepError } from '#core';
import type { InfrastructureOutputs } from '#infra';
import { AT_REST_KEY, PENDING_USER_AT_REST_KEY, updateCluster } from '#services';
import { FIRST_AT_REST_KEY, atRestKeySealer, clusterKeyOf, nextRotation, sealedSecret } from './cluster-secrets.ts';
import type { StepServices } from './context.ts';
import { PROVISIONING_TOKEN } from './join-material.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';

const BOOTSTRAP_TOKEN_TTL_MS = 2 * 60 * 60 * 1000;

/** The user-provided key, moved from its order-time seal (Kiln's key) to the cluster's key; the old copy is dropped. */
async function adoptUserAtRestKey(services: StepServices, context: StepContext): Promise<string> {
  const { tenantId, clusterId } = context.input;
  const pending = context.cluster.sealed?.[PENDING_USER_AT_REST_KEY];
  if (pending === undefined) throw new StepError('bootstrap', 'The user-provided at-rest key is missing.', false);
  return Buffer.from(await services.sealer.unseal(pending, { tenantId, clusterId, purpose: PENDING_USER_AT_REST_KEY })).toString('utf8');
}

/**
 * Issues the cluster's PKI, its at-rest data key and a kubeadm bootstrap
 * token; keeps each only sealed with KMS; and publishes what machines need
 * to the secret store, where the machines (already booted and waiting) read
 * it with their instance role.
 */
export async function bootstrapStep(services: StepServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'bootstrap', async (context) => {
    const { clusterId } = context.input;
    const spec = context.cluster.spec;
    const infrastructure = context.outputsOf('infrastructure') as Partial<InfrastructureOutputs>;
    const apiHost = infrastructure.apiHost;
    if (apiHost === undefined) throw new StepError('bootstrap', 'The infrastructure step recorded no API host.', false);

    const pki = JSON.parse(
      await sealedSecret(services, context, 'pki', async () =>
        JSON.stringify(pkiToPem(await generateClusterPki({ clusterName: context.cluster.name, apiHost, serviceCidr: spec.network.serviceCidr }))),
      ),
    ) as ClusterPkiPem;
    const token = await sealedSecret(services, context, PROVISIONING_TOKEN, () => newBootstrapToken());
    // A user-provided key was sealed when the order arrived; a generated one is made here; KMS needs none.
    const atRestKeys =
      spec.encryption.atRest.provider === 'kms'
        ? []
        : [
            {
              name: FIRST_AT_REST_KEY,
              secret: await sealedSecret(
                services,
                context,
                AT_REST_KEY,
                () => (spec.encryption.atRest.keySource === 'user' ? adoptUserAtRestKey(services, context) : randomBytes(32).toString('base64')),
                atRestKeySealer(services, context.cluster, 'bootstrap'),
              ),
            },
          ];
    if (context.cluster.sealed?.[PENDING_USER_AT_REST_KEY] !== undefined) {
      await updateCluster(services, context.input.tenantId, clusterId, (current) => {
        const { [PENDING_USER_AT_REST_KEY]: _adopted, ...sealed } = current.sealed ?? {};
        return { ...current, sealed };
      });
    }

    const { machineSecrets } = services.inCluster(context.cluster);
    const publish = (role: MachineRole, name: string, value: string) => machineSecrets.publish(clusterId, role, name, value, context.cluster.clusterKeyArn);
    const authorizedKey = context.cluster.status.ssh?.publicKey;
    if (authorizedKey !== undefined) for (const role of ['control-plane', 'worker'] as const) await publish(role, 'ssh-authorized-key', authorizedKey);
    await publish('control-plane', 'encryption-config', toYamlDocuments([encryptionConfiguration(spec, atRestKeys)]));
    // KMS v2: the plugin beside each API server encrypts with the order's key, or else the cluster's own.
    if (spec.encryption.atRest.provider === 'kms') {
      await publish('control-plane', 'kms-key-arn', spec.encryption.atRest.kmsKeyArn ?? clusterKeyOf(context.cluster, 'bootstrap'));
    }
    // The join token comes last in it: machines start joining as soon as they see it.
    for (const secret of joinMaterial(pki, apiHost, token)) await publish(secret.role, secret.name, secret.value);
    if (atRestKeys.length > 0) {
      await updateCluster(services, context.input.tenantId, clusterId, (current) =>
        current.encryption === undefined
          ? { ...current, encryption: { activeKeyId: FIRST_AT_REST_KEY, keys: [FIRST_AT_REST_KEY], ...nextRotation(spec, new Date()) } }
          : current,
      );
    }

    return {
      done: true,
      outputs: {
        bootstrapTokenId: bootstrapTokenId(token),
        bootstrapTokenExpiresAt: new Date(Date.now() + BOOTSTRAP_TOKEN_TTL_MS).toISOString(),
        apiServerNames: [apiHost, firstServiceIp(spec.network.serviceCidr)],
      },
    };
  });
}
