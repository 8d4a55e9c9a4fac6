import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { ENCRYPTION_CONFIG_SCRIPT, encryptionConfiguration, machineSecretPath, toYamlDocuments } from '#bootstrap';
import { StepError, clusterEvent } from '#core';
import {
  ROTATION_PHASES,
  type ConfigVersion,
  type RotationAction,
  type RotationResult,
  type RotationState,
  applyResult,
  keysAt,
  nextAction,
  rewriteSecretsPage,
  startRotation,
} from '#encryption';
import { AT_REST_KEY, updateCluster } from '#services';
import { clusterApi } from './cluster-api.ts';
import { FIRST_AT_REST_KEY, atRestKeySealer, nextRotation, sealedSecret } from './cluster-secrets.ts';
import type { StepServices } from './context.ts';
import { controlPlaneMachines } from './machine-targets.ts';
import { type StepContext, type StepResult, runStep, toStepError } from './step-runner.ts';

/** How long one invocation drives the rotation before handing back to the workflow's poll loop (a Lambda must not run long). */
const SLICE_MS = 60_000;
const COMMAND_TIMEOUT_SECONDS = 300;
/** Unhealthy restarts of one API server in a row before the operation stops and asks for a person (resuming allows as many again). */
export const MAX_UNHEALTHY_RESTARTS = 5;
/** How long the workflow waits before restarting an API server that came back unhealthy. */
const UNHEALTHY_BACKOFF_SECONDS = 5;

/** Where each key's material is kept, sealed: the first key under the name the bootstrap step used. */
function sealedKeyName(keyId: string): string {
  return keyId === FIRST_AT_REST_KEY ? AT_REST_KEY : `${AT_REST_KEY}:${keyId}`;
}

function isRotationState(value: unknown): value is RotationState {
  const phase: unknown = typeof value === 'object' && value !== null ? (value as { phase?: unknown }).phase : undefined;
  return (ROTATION_PHASES as readonly unknown[]).includes(phase);
}

/**
 * Drives an encryption-key rotation (the upstream procedure, as the pure
 * state machine in #encryption) one action at a time, persisting the state
 * after every action so a crash resumes exactly where it stopped. Machine
 * actions go through Run Command to the control plane's own script.
 */
export async function rotateEncryptionKeyStep(services: StepServices, input: unknown): Promise<{ ready: boolean; retryAfterSeconds: number }> {
  const result = await runStep(services, input, 'rotate', (context) => rotateSlice(services, context), { polling: true });
  const backoff = result.done ? 0 : result.progress?.retryAfterSeconds;
  return { ready: result.done, retryAfterSeconds: typeof backoff === 'number' ? backoff : 1 };
}

async function rotateSlice(services: StepServices, context: StepContext): Promise<StepResult<Record<string, unknown>>> {
  const { tenantId, clusterId, operationId } = context.input;
  const cluster = context.cluster;
  const { machineCommands: commands, machineSecrets } = services.inCluster(cluster);
  const sealer = atRestKeySealer(services, cluster, 'rotate');
  const endpoint = cluster.status.endpoint;
  const encryption = cluster.encryption;
  if (endpoint === undefined || encryption === undefined) {
    throw new StepError('rotate', 'This cluster has no at-rest key Kiln manages (KMS clusters rotate in KMS).', false);
  }
  const core = (await clusterApi(services, cluster, 'rotate')).makeApiClient(CoreV1Api);
  const instanceOf = await controlPlaneMachines(services, cluster, core, 'rotate');

  let state: RotationState;
  if (isRotationState(encryption.rotation)) {
    state = encryption.rotation;
  } else {
    state = startRotation({ machines: [...instanceOf.keys()], currentKey: encryption.activeKeyId, now: new Date() });
    const started = state;
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      encryption: { ...(current.encryption ?? encryption), rotation: { ...started }, lastInitiatedAt: new Date().toISOString() },
    }));
  }

  const materialOf = (keyId: string) => sealedSecret(services, context, sealedKeyName(keyId), () => Promise.reject(new StepError('rotate', `Key ${keyId} has no material.`, false)), sealer);
  const run = async (machine: string, command: string[]) => {
    const instanceId = instanceOf.get(machine);
    if (instanceId === undefined) throw new StepError('rotate', `Control plane machine ${machine} is gone; the rotation waits for its replacement.`, true);
    return commands.run(instanceId, command, COMMAND_TIMEOUT_SECONDS);
  };
  const execute = async (action: Exclude<RotationAction, { type: 'done' }>): Promise<RotationResult> => {
    switch (action.type) {
      case 'generate-key':
        await sealedSecret(services, context, sealedKeyName(action.keyId), () => randomBytes(32).toString('base64'), sealer);
        return { type: 'generate-key' };
      case 'write-config': {
        const keys = await Promise.all(action.keys.map(async (keyId) => ({ name: keyId, secret: await materialOf(keyId) })));
        const parameter = machineSecretPath(clusterId, 'control-plane', 'encryption-config');
        await machineSecrets.publish(clusterId, 'control-plane', 'encryption-config', toYamlDocuments([encryptionConfiguration(cluster.spec, keys)]), cluster.clusterKeyArn);
        const written = await run(action.machine, [ENCRYPTION_CONFIG_SCRIPT, 'write', parameter]);
        if (!written.ok) throw new StepError('rotate', `Writing the encryption configuration on ${action.machine} failed: ${written.output}`, true);
        return { type: 'write-config' };
      }
      case 'restart':
        return { type: 'restart', healthy: (await run(action.machine, [ENCRYPTION_CONFIG_SCRIPT, 'restart'])).ok };
      case 'rewrite-secrets': {
        const page = await rewriteSecretsPage(core, action.continueToken);
        return { type: 'rewrite-secrets', continueToken: page.continueToken, rewritten: page.rewritten };
      }
      case 'advance-phase':
        return { type: 'advance-phase', at: new Date().toISOString() };
    }
  };

  const progressOf = (retryAfterSeconds = 1) => ({ phase: state.phase, secretsRewritten: state.rewrite.rewritten, retryAfterSeconds });
  const sliceEnds = Date.now() + SLICE_MS;
  let progressed = false;
  while (Date.now() < sliceEnds) {
    const action = nextAction(state);
    if (action.type === 'done') {
      const finished = state;
      // The parameter's earlier versions list the retired key, and SSM keeps them readable as `name:version` until the
      // parameter is deleted: the final configuration goes into a parameter of its own, with no history.
      const activeKey = { name: finished.newKey, secret: await materialOf(finished.newKey) };
      await machineSecrets.publishWithoutHistory(clusterId, 'control-plane', 'encryption-config', toYamlDocuments([encryptionConfiguration(cluster.spec, [activeKey])]), cluster.clusterKeyArn);
      const now = new Date().toISOString();
      await updateCluster(
        services,
        tenantId,
        clusterId,
        (current) => ({
          ...current,
          // Nothing is encrypted with the retired key any more: its material goes.
          sealed: withoutKey(current.sealed, sealedKeyName(finished.oldKey)),
          encryption: {
            activeKeyId: finished.newKey,
            keys: [finished.newKey],
            lastInitiatedAt: current.encryption?.lastInitiatedAt,
            lastCompletedAt: now,
            ...nextRotation(current.spec, new Date(now)),
          },
        }),
        // Key ids only: the key material never leaves the sealed record.
        () => [clusterEvent('encryption_key.rotated', clusterId, { operationId, previousKeyId: finished.oldKey, activeKeyId: finished.newKey, secretsRewritten: finished.rewrite.rewritten })],
      );
      return { done: true, outputs: { oldKey: finished.oldKey, newKey: finished.newKey, phases: finished.phaseEnteredAt, secretsRewritten: finished.rewrite.rewritten } };
    }
    let result: RotationResult;
    try {
      result = await execute(action);
    } catch (error) {
      const failure = toStepError('rotate', error);
      services.log.warn('rotation action failed', { tenantId, clusterId, action: action.type, error: { name: failure.name, message: error instanceof Error ? error.message : String(error) } });
      // After progress, a transient failure hands back to the workflow's poll loop instead of failing the invocation:
      // the workflow's retry budget then counts invocations that got nowhere, not every blip of a long rotation.
      if (progressed && failure.retriable) return { done: false, progress: progressOf() };
      throw failure;
    }
    state = applyResult(state, action, result);
    progressed = true;
    const saved = state;
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      encryption: { ...(current.encryption ?? encryption), keys: keysLoaded(saved), rotation: { ...saved } },
    }));
    if (result.type === 'restart' && !result.healthy && action.type === 'restart') {
      const failedRestarts = saved.configs[action.machine]?.failedRestarts ?? 0;
      if (failedRestarts % MAX_UNHEALTHY_RESTARTS === 0) {
        throw new StepError(
          'rotate',
          `The API server on ${action.machine} did not come back healthy in ${MAX_UNHEALTHY_RESTARTS} restarts with its new encryption configuration. ` +
            `The rotation stopped in phase ${saved.phase}, with every Secret still readable; start it again once the machine is healthy, and it resumes there.`,
          false,
        );
      }
      // Give the machine time before the next restart, rather than restarting it back to back.
      return { done: false, progress: progressOf(UNHEALTHY_BACKOFF_SECONDS) };
    }
  }
  return { done: false, progress: progressOf() };
}

function withoutKey(sealed: Record<string, string> | undefined, name: string): Record<string, string> {
  const { [name]: _retired, ...kept } = sealed ?? {};
  return kept;
}

/** The keys the control planes' configuration lists right now (the most advanced machine's view). */
function keysLoaded(state: RotationState): string[] {
  return keysAt(state, Math.max(...Object.values(state.configs).map((config) => config.written)) as ConfigVersion);
}
