import { LocalWorkspace, StackNotFoundError, type LocalWorkspaceOptions, type OutputMap, type Stack } from '@pulumi/pulumi/automation';
import { z } from 'zod';
import { StepError } from '#core';
import { clusterProgram } from './cluster-program.ts';
import { INFRASTRUCTURE_STEP, stackName, type ClusterRef, type InfrastructureDriver } from './driver.ts';
import { engineStepError } from './engine-errors.ts';
import { InfrastructureOutputs } from './outputs.ts';
import type { ClusterProgramInput } from './program-input.ts';

export interface AutomationDriverOptions {
  /** The state backend, an S3 bucket URL such as `s3://kiln-state?region=eu-central-1`. */
  backendUrl: string;
  /** Encrypts stack secrets (user data), such as `awskms://alias/kiln-state?region=eu-central-1`. */
  secretsProvider: string;
  projectName?: string;
  /** Where the workspace keeps its settings files; a fresh temporary directory when absent. */
  workDir?: string;
}

export const DEFAULT_PROJECT_NAME = 'kiln-cluster';

/**
 * Production driver: runs the cluster program through the Pulumi Automation
 * API with an S3 backend and a KMS secrets provider. It expects the Pulumi
 * CLI and the aws plugin in the task image, and one operation per process,
 * because the Pulumi runtime is process-global.
 */
export class AutomationDriver implements InfrastructureDriver {
  private readonly options: AutomationDriverOptions & { projectName: string };

  constructor(options: AutomationDriverOptions) {
    if (!options.backendUrl.startsWith('s3://')) throw new Error('backendUrl must be an s3:// URL');
    if (!options.secretsProvider.startsWith('awskms://')) throw new Error('secretsProvider must be an awskms:// URL');
    this.options = { ...options, projectName: options.projectName ?? DEFAULT_PROJECT_NAME };
  }

  async up(input: ClusterProgramInput): Promise<InfrastructureOutputs> {
    const name = stackName(input);
    let program: ReturnType<typeof clusterProgram>;
    try {
      program = clusterProgram(input);
    } catch (error) {
      throw new StepError(INFRASTRUCTURE_STEP, `invalid cluster program input: ${describe(error)}`, false);
    }
    let outputs: OutputMap;
    try {
      const stack = await LocalWorkspace.createOrSelectStack(
        { stackName: name, projectName: this.options.projectName, program },
        this.workspaceOptions(name),
      );
      // Each cluster lives in its order's region, and in the tenant's own account when the order names a role.
      await stack.setConfig('aws:region', { value: input.spec.region });
      const account = input.spec.account;
      if (account !== undefined) {
        await stack.setConfig('aws:assumeRoles[0].roleArn', { value: account.roleArn }, true);
        // Kiln's external ID for the tenant, recorded with the cluster (a cluster recorded without one is assumed without).
        if (account.externalId !== undefined) await stack.setConfig('aws:assumeRoles[0].externalId', { value: account.externalId }, true);
        await stack.setConfig('aws:assumeRoles[0].sessionName', { value: `kiln-${input.clusterId}` }, true);
      }
      outputs = (await stack.up({ color: 'never' })).outputs;
    } catch (error) {
      throw engineStepError(error, `pulumi up of stack ${name} failed`);
    }
    return parseOutputs(outputs, name);
  }

  async destroy(ref: ClusterRef): Promise<void> {
    const name = stackName(ref);
    let stack: Stack;
    try {
      // Destroy works from the recorded state; the program is never run.
      stack = await LocalWorkspace.selectStack(
        { stackName: name, projectName: this.options.projectName, program: () => Promise.resolve({}) },
        this.workspaceOptions(name),
      );
    } catch (error) {
      if (error instanceof StackNotFoundError) return;
      throw engineStepError(error, `selecting stack ${name} failed`);
    }
    try {
      // Destroy deletes with the provider configuration recorded in the stack's state (region, assumed role).
      await stack.destroy({ color: 'never' });
      await stack.workspace.removeStack(name);
    } catch (error) {
      if (error instanceof StackNotFoundError) return;
      throw engineStepError(error, `pulumi destroy of stack ${name} failed`);
    }
  }

  private workspaceOptions(name: string): LocalWorkspaceOptions {
    const { backendUrl, secretsProvider, projectName, workDir } = this.options;
    return {
      ...(workDir === undefined ? {} : { workDir }),
      secretsProvider,
      projectSettings: { name: projectName, runtime: 'nodejs', backend: { url: backendUrl } },
      // Stack settings repeat the provider so a stack selected from a fresh work dir still decrypts its secrets.
      stackSettings: { [name]: { secretsProvider } },
    };
  }
}

function describe(error: unknown): string {
  const message =
    error instanceof z.ZodError
      ? error.issues.map((issue) => `${issue.path.join('.') || 'input'}: ${issue.message}`).join('; ')
      : error instanceof Error
        ? error.message
        : String(error);
  return message.length > 300 ? `${message.slice(0, 300)}...` : message;
}

/** Stack outputs arrive as `{ value, secret }` pairs; the workflow gets the validated values. */
function parseOutputs(outputs: OutputMap, name: string): InfrastructureOutputs {
  const values = Object.fromEntries(Object.entries(outputs).map(([key, output]) => [key, output.value as unknown]));
  const parsed = InfrastructureOutputs.safeParse(values);
  if (!parsed.success) {
    throw new StepError(INFRASTRUCTURE_STEP, `stack ${name} exported unexpected outputs: ${parsed.error.issues.map((issue) => issue.path.join('.')).join(', ')}`, false);
  }
  return parsed.data;
}
