import { addonDrift, installAddons, kubeConfigFor, listNodes, liveForbiddenAdminBindings, objectRef, removeAddons, renderAddons } from '#addons';
import {
  type ClusterPkiPem,
  type MachineRole,
  caCertHash,
  controlPlanePkiFiles,
  encryptionConfiguration,
  firstServiceIp,
  generateClusterPki,
  pkiToPem,
  renderUserData,
  toYamlDocuments,
} from '#bootstrap';
import { randomBytes } from 'node:crypto';
import { type ClusterSpec, StepError, WorkflowInput, assertOrderRules } from '#core';
import type { InfrastructureDriver } from '#infra';
import { InfrastructureOutputs } from '#infra';
import type { SecretSealer } from '#encryption';
import type { ClusterRecord } from '#store';
import { AT_REST_KEY, PENDING_USER_AT_REST_KEY } from '../clusters.ts';
import { versionSupportEvents, withVersionSupport } from '../kubernetes-versions.ts';
import { updateCluster, updateOperation, withCondition } from '../mutations.ts';
import { ensureSshKey } from '../ssh-keys.ts';
import type { KilnServices } from '../services.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';

/** What the plan step decides, and every later step reads. */
export interface ProvisionPlan extends Record<string, unknown> {
  availabilityZones: string[];
  controlPlaneReplicas: number;
  workerNodes: number;
  pools: { name: string; size: number; instanceType: string }[];
}

function planOf(context: StepContext): ProvisionPlan {
  const plan = context.outputsOf('plan') as Partial<ProvisionPlan>;
  if (plan.availabilityZones === undefined || plan.pools === undefined) {
    throw new StepError('plan', 'The plan step has not recorded its outputs.', false);
  }
  return plan as ProvisionPlan;
}

function endpointOf(context: StepContext): string {
  const endpoint = context.cluster.status.endpoint;
  if (endpoint === undefined) throw new StepError('infrastructure', 'The cluster has no API endpoint yet.', false);
  return endpoint;
}

function zonesFor(region: string, count: number): string[] {
  return ['a', 'b', 'c'].slice(0, count).map((suffix) => `${region}${suffix}`);
}

export async function planStep(services: KilnServices, input: unknown): Promise<StepResult<ProvisionPlan>> {
  return runStep(services, input, 'plan', async ({ cluster, input: { tenantId, clusterId } }) => {
    const spec = cluster.spec;
    assertOrderRules(spec, { stored: true });
    await ensureSshKey(services, cluster);
    const now = new Date().toISOString();
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      status: {
        ...current.status,
        phase: 'Provisioning',
        conditions: withCondition(current.status.conditions, { type: 'Ready', status: 'False', reason: 'Provisioning', message: 'Building infrastructure.' }, now),
      },
    }));
    const pools = spec.nodePools.map((pool) => ({ name: pool.name, size: pool.size, instanceType: pool.instanceType }));
    return {
      done: true,
      outputs: {
        availabilityZones: zonesFor(spec.region, 3),
        controlPlaneReplicas: spec.controlPlane.replicas,
        workerNodes: pools.reduce((sum, pool) => sum + pool.size, 0),
        pools,
      },
    };
  });
}

/** Pulumi up (or destroy) for the cluster; the container entry of the Infrastructure and Destroy states. */
export async function infrastructureStep(services: KilnServices, driver: InfrastructureDriver, input: unknown): Promise<StepResult<InfrastructureOutputs>> {
  return runStep(services, input, 'infrastructure', async (context) => {
    const { cluster, input: { tenantId, clusterId } } = context;
    const plan = planOf(context);
    // Public keys are no secret: the machines authorize the cluster's key from their user data.
    const authorizedKey = cluster.status.ssh?.publicKey;
    const userDataOptions = authorizedKey === undefined ? {} : { authorizedKey };
    const outputs = await driver.up({
      tenantId,
      clusterId,
      spec: cluster.spec,
      availabilityZones: plan.availabilityZones,
      userData: {
        controlPlane: renderUserData(clusterId, cluster.spec, 'control-plane', undefined, userDataOptions),
        pools: Object.fromEntries(
          cluster.spec.nodePools.map((pool) => [pool.name, renderUserData(clusterId, cluster.spec, 'worker', pool.name, userDataOptions)]),
        ),
      },
    });
    const validated = InfrastructureOutputs.parse(outputs);
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      clusterKeyArn: validated.kmsKeyArn,
      apiHost: validated.apiHost,
      status: { ...current.status, endpoint: validated.apiEndpoint },
    }));
    return { done: true, outputs: validated };
  });
}

/** When the order's rotationPeriodDays asks for the next key rotation, counted from `from`. */
export function nextRotation(spec: ClusterSpec, from: Date): { nextRotationAt?: string } {
  const days = spec.encryption.atRest.rotationPeriodDays;
  return days === undefined ? {} : { nextRotationAt: new Date(from.getTime() + days * 24 * 60 * 60 * 1000).toISOString() };
}

/** The id of the at-rest key a cluster starts with; rotations name the next ones key-2, key-3, … */
export const FIRST_AT_REST_KEY = 'key-1';

const TOKEN_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const BOOTSTRAP_TOKEN_TTL_MS = 2 * 60 * 60 * 1000;

function tokenPart(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (byte) => TOKEN_ALPHABET[byte % TOKEN_ALPHABET.length]).join('');
}

/**
 * Unseals a secret the cluster already has, or makes, seals and stores a new one: re-running the step changes nothing.
 * Kiln's own sealing key wraps it unless `sealer` says otherwise (at-rest data keys use the cluster's key).
 */
export async function sealedSecret(
  services: KilnServices,
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

/** The sealer of the cluster's at-rest data keys: its own KMS key, in its account and region. */
/** The cluster's own KMS key, which the infrastructure step records. */
function clusterKeyOf(cluster: StepContext['cluster'], step: string): string {
  if (cluster.clusterKeyArn === undefined) throw new StepError(step, 'The cluster has no KMS key yet: the infrastructure step has not run.', false);
  return cluster.clusterKeyArn;
}

export function atRestKeySealer(services: KilnServices, cluster: StepContext['cluster'], step: string): SecretSealer {
  return services.inCluster(cluster).sealer(clusterKeyOf(cluster, step));
}

/** The user-provided key, moved from its order-time seal (Kiln's key) to the cluster's key; the old copy is dropped. */
async function adoptUserAtRestKey(services: KilnServices, context: StepContext): Promise<string> {
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
export async function bootstrapStep(services: KilnServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
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
    const token = await sealedSecret(services, context, 'bootstrapToken', () => `${tokenPart(6)}.${tokenPart(16)}`);
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

    const caHash = caCertHash(pki.clusterCa.certificatePem);
    const { machineSecrets } = services.inCluster(context.cluster);
    const publish = (role: MachineRole, name: string, value: string) => machineSecrets.publish(clusterId, role, name, value, context.cluster.clusterKeyArn);
    for (const role of ['control-plane', 'worker'] as const) {
      await publish(role, 'api-host', apiHost);
      await publish(role, 'ca-cert-hash', caHash);
      const authorizedKey = context.cluster.status.ssh?.publicKey;
      if (authorizedKey !== undefined) await publish(role, 'ssh-authorized-key', authorizedKey);
    }
    await publish('control-plane', 'encryption-config', toYamlDocuments([encryptionConfiguration(spec, atRestKeys)]));
    // KMS v2: the plugin beside each API server encrypts with the order's key, or else the cluster's own.
    if (spec.encryption.atRest.provider === 'kms') {
      await publish('control-plane', 'kms-key-arn', spec.encryption.atRest.kmsKeyArn ?? clusterKeyOf(context.cluster, 'bootstrap'));
    }
    for (const [file, content] of Object.entries(controlPlanePkiFiles(pki))) await publish('control-plane', `pki/${file}`, content);
    // The join token goes last: machines start joining as soon as they see it.
    for (const role of ['control-plane', 'worker'] as const) await publish(role, 'join-token', token);
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
        bootstrapTokenId: token.split('.')[0] ?? '',
        bootstrapTokenExpiresAt: new Date(Date.now() + BOOTSTRAP_TOKEN_TTL_MS).toISOString(),
        caCertHash: caHash,
        apiServerNames: [apiHost, firstServiceIp(spec.network.serviceCidr)],
      },
    };
  });
}

interface WaitResult extends Record<string, unknown> {
  ready: boolean;
  retryAfterSeconds: number;
}

async function waitForNodes(
  services: KilnServices,
  input: unknown,
  step: 'control-plane' | 'workers',
): Promise<WaitResult> {
  const result = await runStep(
    services,
    input,
    step,
    async (context) => {
      const plan = planOf(context);
      const expected = step === 'control-plane' ? plan.controlPlaneReplicas : plan.workerNodes;
      const role = step === 'control-plane' ? 'control-plane' : 'worker';
      const nodes = (await listNodes(kubeConfigFor(context.cluster.name, endpointOf(context)))).filter((node) => node.role === role);
      const ready = nodes.filter((node) => node.ready).length;
      if (ready >= expected) return { done: true, outputs: { expected, ready, nodes: nodes.map((node) => node.name) } };

      const startedAt = Date.parse(context.operation.steps[step]?.startedAt ?? new Date().toISOString());
      const timeoutMs = context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes * 60_000;
      if (Date.now() - startedAt > timeoutMs) {
        throw new StepError(step, `Only ${ready} of ${expected} ${role} nodes became Ready within ${context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes} minutes.`, false);
      }
      return { done: false, progress: { expected, ready } };
    },
    { polling: true },
  );
  return { ready: result.done, retryAfterSeconds: services.config.KILN_POLL_SECONDS };
}

export function waitForControlPlaneStep(services: KilnServices, input: unknown): Promise<WaitResult> {
  return waitForNodes(services, input, 'control-plane');
}

export function waitForWorkersStep(services: KilnServices, input: unknown): Promise<WaitResult> {
  return waitForNodes(services, input, 'workers');
}

/** The CA behind the in-cluster ClusterIssuer: its own, so certificates it signs are not trusted by the API server. */
async function issuerCaOf(services: KilnServices, context: StepContext) {
  const issuer = JSON.parse(
    await sealedSecret(services, context, 'issuerCa', async () =>
      JSON.stringify(pkiToPem(await generateClusterPki({ clusterName: `${context.cluster.name}-issuer`, apiHost: 'issuer.invalid', serviceCidr: context.cluster.spec.network.serviceCidr })).clusterCa),
    ),
  ) as ClusterPkiPem['clusterCa'];
  return { certificatePem: issuer.certificatePem, privateKeyPem: issuer.privateKeyPem };
}

/** The add-ons of the order; from the cluster record, so an update renders exactly what the provision did. */
async function renderAddonsFor(services: KilnServices, context: StepContext) {
  const apiHost = context.cluster.apiHost;
  return renderAddons(context.input.clusterId, context.cluster.spec, {
    issuerCa: await issuerCaOf(services, context),
    ...(apiHost === undefined ? {} : { apiServer: { host: apiHost, port: 6443 } }),
  });
}

/** Within the Task's 900 s timeout, leaving room to record the result. */
const ADDONS_DEADLINE_MS = 10 * 60_000;

export async function addonsStep(services: KilnServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'addons', async (context) => {
    const config = kubeConfigFor(context.cluster.name, endpointOf(context));
    const addons = await renderAddonsFor(services, context);
    // Waits for each chart's CRDs and workloads, then applies what depends on them (issuers, policies).
    const { applied, pending } = await installAddons(config, addons, { deadlineMs: ADDONS_DEADLINE_MS });
    const removed = await removeAddons(config, addons);
    return { done: true, outputs: { applied, pending, removed } };
  });
}

export async function verifyStep(services: KilnServices, input: unknown): Promise<StepResult<Record<string, unknown>>> {
  return runStep(services, input, 'verify', async (context) => {
    const config = kubeConfigFor(context.cluster.name, endpointOf(context));
    // From the order, not a plan: verify also runs in update operations, which have no plan step.
    const { controlPlane, nodePools } = context.cluster.spec;
    const nodes = await listNodes(config);
    const notReady = nodes.filter((node) => !node.ready).map((node) => node.name);
    const expected = controlPlane.replicas + nodePools.reduce((sum, pool) => sum + pool.size, 0);
    if (nodes.length < expected || notReady.length > 0) {
      throw new StepError('verify', `Expected ${expected} Ready nodes; ${nodes.length - notReady.length} are Ready${notReady.length > 0 ? ` (not Ready: ${notReady.join(', ')})` : ''}.`, true);
    }
    // Machines keep the patch they booted with until an upgrade, but never leave the cluster's minor.
    const minor = context.cluster.spec.kubernetesVersion;
    const offMinor = nodes.filter((node) => !node.kubeletVersion.startsWith(`v${minor}.`)).map((node) => `${node.name} (${node.kubeletVersion || 'no version'})`);
    if (offMinor.length > 0) throw new StepError('verify', `Nodes run a kubelet other than Kubernetes ${minor}: ${offMinor.join(', ')}.`, false);
    const pending = new Set((context.outputsOf('addons') as { pending?: string[] }).pending ?? []);
    const objects = (await renderAddonsFor(services, context)).flatMap((addon) => addon.objects).filter((object) => !pending.has(objectRef(object)));
    const problems = [...(await addonDrift(config, objects)), ...(await liveForbiddenAdminBindings(config))];
    if (problems.length > 0) throw new StepError('verify', `Hardening not in place: ${problems.join('; ')}.`, true);
    return { done: true, outputs: { readyNodes: nodes.length, checked: ['nodes-ready', 'kubelets-on-ordered-minor', 'addon-objects-as-applied', 'no-cluster-admin-service-accounts'] } };
  });
}

/** The last state of a successful provision: the operation succeeds and the cluster is Ready. */
export async function markReadyStep(services: KilnServices, rawInput: unknown): Promise<void> {
  const { tenantId, clusterId, operationId } = WorkflowInput.parse(rawInput);
  const now = new Date().toISOString();
  const operation = await updateOperation(services, tenantId, operationId, (current) => ({ ...current, state: 'succeeded', finishedAt: current.finishedAt ?? now }));
  const reason = operation.type === 'provision' ? 'Provisioned' : 'Updated';
  const at = new Date(now);
  await updateCluster(
    services,
    tenantId,
    clusterId,
    (cluster) => {
      const { activeOperationId: _finished, reason: _reason, ...status } = cluster.status;
      const ready: ClusterRecord = {
        ...cluster,
        status: {
          ...status,
          phase: 'Ready',
          conditions: withCondition(status.conditions, { type: 'Ready', status: 'True', reason, message: 'All nodes are Ready and hardening is verified.' }, now),
        },
      };
      // Every finished operation states where the cluster's Kubernetes stands, so an upgrade clears an end-of-life warning at once.
      return withVersionSupport(ready, at) ?? ready;
    },
    (before, after) => versionSupportEvents(before, after, at),
  );
  services.log.info('cluster ready', { tenantId, clusterId, operationId });
}
