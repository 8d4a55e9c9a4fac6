import { CoreV1Api } from '@kubernetes/client-node';
import { ADMISSION_CONFIG_SCRIPT, admissionConfigurationFile, machineSecretPath } from '#bootstrap';
import { StepError } from '#core';
import { clusterApi } from './cluster-api.ts';
import type { StepServices } from './context.ts';
import { controlPlaneMachines } from './machine-targets.ts';
import { MAX_UNHEALTHY_RESTARTS } from './rotate-encryption-key.ts';
import { type StepContext, type StepResult, runStep } from './step-runner.ts';

const STEP = 'pod-security-defaults';
const COMMAND_TIMEOUT_SECONDS = 300;
/** How long the workflow waits before restarting an API server that came back unhealthy. */
const UNHEALTHY_BACKOFF_SECONDS = 5;
/** The secret-store name the control plane machines read the new AdmissionConfiguration from. */
const PARAMETER_NAME = 'admission-config';

/** Where the roll stands, kept on the step after every action, so a re-run resumes at the machine it stopped on. */
interface DefaultsRoll {
  /** The control plane machines (node names) when the roll began, in the order they take the new defaults. */
  machines: string[];
  /** Machines whose disk has the new AdmissionConfiguration. */
  written: string[];
  /** Machines whose API server came back healthy with it. */
  restarted: string[];
  /** Unhealthy restarts of the current machine in a row. */
  failedRestarts: number;
}

function isDefaultsRoll(value: unknown): value is DefaultsRoll {
  if (typeof value !== 'object' || value === null) return false;
  const roll = value as Partial<Record<keyof DefaultsRoll, unknown>>;
  return Array.isArray(roll.machines) && Array.isArray(roll.written) && Array.isArray(roll.restarted) && typeof roll.failedRestarts === 'number';
}

/**
 * Brings a PATCH of the cluster-wide Pod Security levels to the API servers. kube-apiserver reads its admission
 * configuration only as it starts, so the new AdmissionConfiguration goes to the cluster's secret store (as a key
 * rotation publishes an encryption configuration) and each control plane machine in turn, through Run Command,
 * writes it to its disk and restarts its API server, which must answer healthy before the next machine's is touched:
 * at most one API server is down at a time. One action per call, recorded on the step before the next, so a crash
 * repeats at most that action (both are safe to repeat). Machines that join later boot from a launch template the
 * infrastructure step has already rendered with the new levels.
 */
export async function podSecurityDefaultsStep(services: StepServices, input: unknown): Promise<{ ready: boolean; retryAfterSeconds: number }> {
  const result = await runStep(services, input, STEP, (context) => nextAction(services, context), { polling: true });
  const backoff = result.done ? 0 : result.progress?.retryAfterSeconds;
  return { ready: result.done, retryAfterSeconds: typeof backoff === 'number' ? backoff : 0 };
}

async function nextAction(services: StepServices, context: StepContext): Promise<StepResult<Record<string, unknown>>> {
  const { cluster } = context;
  const core = (await clusterApi(services, cluster, STEP)).makeApiClient(CoreV1Api);
  const instances = await controlPlaneMachines(services, cluster, core, STEP);
  const recorded = context.operation.steps[STEP]?.outputs;
  const roll: DefaultsRoll = isDefaultsRoll(recorded) ? recorded : { machines: [...instances.keys()], written: [], restarted: [], failedRestarts: 0 };
  const progress = (next: DefaultsRoll, retryAfterSeconds = 0): StepResult<Record<string, unknown>> => ({ done: false, progress: { ...next, retryAfterSeconds } });

  // A machine gone since the roll began (replaced meanwhile) booted from the new launch template or is no more.
  const machine = roll.machines.find((name) => !roll.restarted.includes(name) && instances.has(name));
  if (machine === undefined) return { done: true, outputs: { machines: roll.machines, written: roll.written, restarted: roll.restarted } };
  const instanceId = instances.get(machine) ?? '';
  const { machineCommands, machineSecrets } = services.inCluster(cluster);

  if (!roll.written.includes(machine)) {
    await machineSecrets.publish(cluster.id, 'control-plane', PARAMETER_NAME, admissionConfigurationFile(cluster.spec), cluster.clusterKeyArn);
    const written = await machineCommands.run(instanceId, [ADMISSION_CONFIG_SCRIPT, 'write', machineSecretPath(cluster.id, 'control-plane', PARAMETER_NAME)], COMMAND_TIMEOUT_SECONDS);
    if (!written.ok) throw new StepError(STEP, `Writing the admission configuration on ${machine} failed: ${written.output}`, true);
    return progress({ ...roll, written: [...roll.written, machine] });
  }

  const restarted = await machineCommands.run(instanceId, [ADMISSION_CONFIG_SCRIPT, 'restart'], COMMAND_TIMEOUT_SECONDS);
  if (restarted.ok) return progress({ ...roll, restarted: [...roll.restarted, machine], failedRestarts: 0 });
  const failedRestarts = roll.failedRestarts + 1;
  if (failedRestarts % MAX_UNHEALTHY_RESTARTS === 0) {
    throw new StepError(
      STEP,
      `The API server on ${machine} did not come back healthy in ${MAX_UNHEALTHY_RESTARTS} restarts with the new Pod Security defaults (${restarted.output}). ` +
        `${roll.restarted.length} of ${roll.machines.length} control plane machines have them; the others keep the old ones until they restart.`,
      false,
    );
  }
  // Give the machine time before the next restart, rather than restarting it back to back.
  return progress({ ...roll, failedRestarts }, UNHEALTHY_BACKOFF_SECONDS);
}
