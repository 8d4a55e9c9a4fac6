import { randomBytes } from 'node:crypto';
import { CoreV1Api } from '@kubernetes/client-node';
import { kubeConfigFor } from '#addons';
import { ENCRYPTION_CONFIG_SCRIPT, type MachineCommands, encryptionConfiguration, instanceIdOf, machineSecretPath, toYamlDocuments } from '#bootstrap';
import { StepError } from '#core';
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
import { AT_REST_KEY } from '../clusters.ts';
import { updateCluster } from '../mutations.ts';
import type { KilnServices } from '../services.ts';
import { FIRST_AT_REST_KEY, nextRotation, sealedSecret } from './provision.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';

/** How long one invocation drives the rotation before handing back to the workflow's poll loop (a Lambda must not run long). */
const SLICE_MS = 60_000;
const COMMAND_TIMEOUT_SECONDS = 300;

/** Where each key's material is kept, sealed: the first key under the name the bootstrap step used. */
function sealedKeyName(keyId: string): string {
  return keyId === FIRST_AT_REST_KEY ? AT_REST_KEY : `${AT_REST_KEY}:${keyId}`;
}

function isRotationState(value: unknown): value is RotationState {
  const phase: unknown = typeof value === 'object' && value !== null ? (value as { phase?: unknown }).phase : undefined;
  return (ROTATION_PHASES as readonly unknown[]).includes(phase);
}

interface ControlPlaneMachine {
  name: string;
  instanceId: string;
}

async function controlPlaneMachines(core: CoreV1Api): Promise<ControlPlaneMachine[]> {
  const nodes = await core.listNode({ labelSelector: 'node-role.kubernetes.io/control-plane' });
  return nodes.items
    .map((node) => ({ name: node.metadata?.name ?? '', instanceId: instanceIdOf(node.spec?.providerID) ?? '' }))
    .filter((machine) => machine.name !== '' && machine.instanceId !== '')
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Drives an encryption-key rotation (the upstream procedure, as the pure
 * state machine in #encryption) one action at a time, persisting the state
 * after every action so a crash resumes exactly where it stopped. Machine
 * actions go through Run Command to the control plane's own script.
 */
export async function rotateEncryptionKeyStep(services: KilnServices, input: unknown): Promise<{ ready: boolean; retryAfterSeconds: number }> {
  const result = await runStep(services, input, 'rotate', (context) => rotateSlice(services, services.machineCommands, context), { polling: true });
  return { ready: result.done, retryAfterSeconds: result.done ? 0 : 1 };
}

async function rotateSlice(services: KilnServices, commands: MachineCommands, context: StepContext): Promise<StepResult<Record<string, unknown>>> {
  const { tenantId, clusterId } = context.input;
  const cluster = context.cluster;
  const endpoint = cluster.status.endpoint;
  const encryption = cluster.encryption;
  if (endpoint === undefined || encryption === undefined) {
    throw new StepError('rotate', 'This cluster has no at-rest key Kiln manages (KMS clusters rotate in KMS).', false);
  }
  const core = kubeConfigFor(cluster.name, endpoint).makeApiClient(CoreV1Api);
  const machines = await controlPlaneMachines(core);
  const instanceOf = new Map(machines.map((machine) => [machine.name, machine.instanceId]));

  let state: RotationState;
  if (isRotationState(encryption.rotation)) {
    state = encryption.rotation;
  } else {
    state = startRotation({ machines: machines.map((machine) => machine.name), currentKey: encryption.activeKeyId, now: new Date() });
    const started = state;
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      encryption: { ...(current.encryption ?? encryption), rotation: { ...started }, lastInitiatedAt: new Date().toISOString() },
    }));
  }

  const run = async (machine: string, command: string[]) => {
    const instanceId = instanceOf.get(machine);
    if (instanceId === undefined) throw new StepError('rotate', `Control plane machine ${machine} is gone; the rotation waits for its replacement.`, true);
    return commands.run(instanceId, command, COMMAND_TIMEOUT_SECONDS);
  };
  const execute = async (action: Exclude<RotationAction, { type: 'done' }>): Promise<RotationResult> => {
    switch (action.type) {
      case 'generate-key':
        await sealedSecret(services, context, sealedKeyName(action.keyId), () => randomBytes(32).toString('base64'));
        return { type: 'generate-key' };
      case 'write-config': {
        const keys = await Promise.all(
          action.keys.map(async (keyId) => ({ name: keyId, secret: await sealedSecret(services, context, sealedKeyName(keyId), () => Promise.reject(new StepError('rotate', `Key ${keyId} has no material.`, false))) })),
        );
        const parameter = machineSecretPath(clusterId, 'control-plane', 'encryption-config');
        await services.machineSecrets.publish(clusterId, 'control-plane', 'encryption-config', toYamlDocuments([encryptionConfiguration(cluster.spec, keys)]));
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

  const sliceEnds = Date.now() + SLICE_MS;
  while (Date.now() < sliceEnds) {
    const action = nextAction(state);
    if (action.type === 'done') {
      const finished = state;
      const now = new Date().toISOString();
      await updateCluster(services, tenantId, clusterId, (current) => ({
        ...current,
        encryption: {
          activeKeyId: finished.newKey,
          keys: [finished.newKey],
          lastInitiatedAt: current.encryption?.lastInitiatedAt,
          lastCompletedAt: now,
          ...nextRotation(current.spec, new Date(now)),
        },
      }));
      return { done: true, outputs: { oldKey: finished.oldKey, newKey: finished.newKey, phases: finished.phaseEnteredAt, secretsRewritten: finished.rewrite.rewritten } };
    }
    state = applyResult(state, action, await execute(action));
    const saved = state;
    await updateCluster(services, tenantId, clusterId, (current) => ({
      ...current,
      encryption: { ...(current.encryption ?? encryption), keys: keysLoaded(saved), rotation: { ...saved } },
    }));
  }
  return { done: false, progress: { phase: state.phase, secretsRewritten: state.rewrite.rewritten } };
}

/** The keys the control planes' configuration lists right now (the most advanced machine's view). */
function keysLoaded(state: RotationState): string[] {
  return keysAt(state, Math.max(...Object.values(state.configs).map((config) => config.written)) as ConfigVersion);
}
