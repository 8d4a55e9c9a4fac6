import { type SFNClient, SendTaskSuccessCommand, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { StepError, type WorkflowInput } from '#core';
import { afterEach, describe, expect, it } from 'vitest';
import { type WorkflowName, exampleSubstitutions, renderWorkflow, workflowPlaceholders } from '#workflows';
import { type StepFunctionsService, startStepFunctionsService } from './server.ts';
import type { EcsTaskHandler, LambdaHandler } from './task-bindings.ts';
import { sfnClient, waitForFinish } from './testing.ts';

/** The real provision and deprovision definitions, run with fake step handlers. */

const substitutions = exampleSubstitutions([...workflowPlaceholders('provision'), ...workflowPlaceholders('deprovision')]);
const arnOf = (placeholder: string): string => substitutions[placeholder] ?? `missing ${placeholder}`;
const INFRASTRUCTURE_TASK = arnOf('InfrastructureTaskDefinitionArn');

interface Call {
  step: string;
  event: unknown;
}

/** Every Lambda of both workflows, recording its calls; `overrides` replaces single steps. */
function fakeLambdas(calls: Call[], overrides: Record<string, LambdaHandler> = {}): Record<string, LambdaHandler> {
  const steps = ['Plan', 'AwaitInfrastructureSlot', 'ReleaseInfrastructureSlot', 'Bootstrap', 'Network', 'WaitForControlPlane', 'WaitForWorkers', 'Addons', 'Verify', 'MarkReady', 'MarkDeleted', 'RecordFailure'];
  return Object.fromEntries(
    steps.map((step): [string, LambdaHandler] => [
      arnOf(`${step}FunctionArn`),
      async (event) => {
        calls.push({ step, event });
        const override = overrides[step];
        if (override) return override(event);
        // A free slot at once: the queue sends the workflow its token.
        if (step === 'AwaitInfrastructureSlot') await client?.send(new SendTaskSuccessCommand({ taskToken: (event as { taskToken: string }).taskToken, output: '{"granted":true}' }));
        return step.startsWith('WaitFor') || step === 'Network' ? { ready: true, retryAfterSeconds: 0 } : null;
      },
    ]),
  );
}

/** Answers "not ready" `times` times, then "ready". */
function readyAfter(times: number, retryAfterSeconds: number): LambdaHandler {
  let polls = 0;
  return () => {
    polls += 1;
    return Promise.resolve({ ready: polls > times, retryAfterSeconds });
  };
}

const input: WorkflowInput = { tenantId: 'ten_1', clusterId: 'cls_1', operationId: 'op_1', requestId: 'req_1' };

let service: StepFunctionsService | undefined;
let client: SFNClient | undefined;

async function run(
  workflow: WorkflowName,
  bindings: { lambdas: Record<string, LambdaHandler>; ecsTasks: Record<string, EcsTaskHandler> },
  waitTimeScale = 0.001,
): Promise<Awaited<ReturnType<typeof waitForFinish>>> {
  service = await startStepFunctionsService({
    stateMachines: { [workflow]: renderWorkflow(workflow, substitutions) },
    ...bindings,
    waitTimeScale,
  });
  client = sfnClient(service.endpoint);
  const { executionArn = '' } = await client.send(
    new StartExecutionCommand({ stateMachineArn: service.stateMachineArn(workflow), name: input.operationId, input: JSON.stringify(input) }),
  );
  return waitForFinish(client, executionArn);
}

afterEach(async () => {
  client?.destroy();
  await service?.close();
  client = undefined;
  service = undefined;
});

describe('the provision workflow in the sandbox', () => {
  it('runs every step in order, polls until ready, and hands each Lambda exactly the workflow input', async () => {
    const calls: Call[] = [];
    const environments: Record<string, string>[] = [];
    const finished = await run('provision', {
      lambdas: fakeLambdas(calls, { Network: readyAfter(1, 10), WaitForControlPlane: readyAfter(2, 5), WaitForWorkers: readyAfter(1, 30) }),
      ecsTasks: {
        [INFRASTRUCTURE_TASK]: (environment) => {
          environments.push(environment);
          calls.push({ step: 'Infrastructure', event: environment });
          return Promise.resolve();
        },
      },
    });

    expect(finished.status).toBe('SUCCEEDED');
    expect(calls.map((call) => call.step)).toEqual([
      'Plan',
      'AwaitInfrastructureSlot',
      'Infrastructure',
      'ReleaseInfrastructureSlot',
      'Bootstrap',
      'Network',
      'Network',
      'WaitForControlPlane',
      'WaitForControlPlane',
      'WaitForControlPlane',
      'WaitForWorkers',
      'WaitForWorkers',
      'Addons',
      'Verify',
      'MarkReady',
    ]);
    for (const call of calls.filter((entry) => !['Infrastructure', 'AwaitInfrastructureSlot'].includes(entry.step))) {
      expect(call.event, call.step).toEqual(input);
    }
    // The queue gets the workflow input and the task token its grant sends back.
    expect(calls.find((entry) => entry.step === 'AwaitInfrastructureSlot')?.event).toEqual({ ...input, taskToken: expect.stringMatching(/^AQ/) });
    expect(environments).toHaveLength(1);
    expect(environments[0]?.KILN_STEP_ACTION).toBe('up');
    expect(JSON.parse(environments[0]?.KILN_STEP_INPUT ?? 'null')).toEqual(input);
    // The poll loops overwrite their result instead of piling it up.
    expect(JSON.parse(finished.output ?? 'null')).toEqual({
      ...input,
      network: { ready: true, retryAfterSeconds: 10 },
      controlPlane: { ready: true, retryAfterSeconds: 5 },
      workers: { ready: true, retryAfterSeconds: 30 },
    });
  });

  it('runs the same loop unscaled, through the emulator Wait states, when the polls ask for no wait', async () => {
    const calls: Call[] = [];
    const finished = await run(
      'provision',
      {
        lambdas: fakeLambdas(calls, { WaitForControlPlane: readyAfter(1, 0), WaitForWorkers: readyAfter(2, 0) }),
        ecsTasks: { [INFRASTRUCTURE_TASK]: () => Promise.resolve() },
      },
      1,
    );

    expect(finished.status).toBe('SUCCEEDED');
    expect(calls.filter((call) => call.step === 'WaitForControlPlane')).toHaveLength(2);
    expect(calls.filter((call) => call.step === 'WaitForWorkers')).toHaveLength(3);
  });

  it('retries a transient failure, records a permanent one, and fails as Kiln.ProvisioningFailed', async () => {
    const calls: Call[] = [];
    let bootstrapAttempts = 0;
    const finished = await run('provision', {
      lambdas: fakeLambdas(calls, {
        Bootstrap: () => {
          bootstrapAttempts += 1;
          throw new StepError('bootstrap', bootstrapAttempts === 1 ? 'S3 throttled' : 'the PKI cannot be built', bootstrapAttempts === 1);
        },
      }),
      ecsTasks: { [INFRASTRUCTURE_TASK]: () => Promise.resolve() },
    });

    const cause = JSON.stringify({ errorType: 'Kiln.Permanent', errorMessage: 'the PKI cannot be built' });
    expect(bootstrapAttempts).toBe(2);
    expect(calls.map((call) => call.step)).toEqual(['Plan', 'AwaitInfrastructureSlot', 'ReleaseInfrastructureSlot', 'Bootstrap', 'Bootstrap', 'RecordFailure']);
    expect(calls.at(-1)?.event).toEqual({ ...input, error: { Error: 'Kiln.Permanent', Cause: cause } });
    expect(finished).toMatchObject({ status: 'FAILED', error: 'Kiln.ProvisioningFailed', cause });
  });

  it('retries a failed infrastructure task twice, then records States.TaskFailed with the stopped task as cause', async () => {
    const calls: Call[] = [];
    let attempts = 0;
    const finished = await run('provision', {
      lambdas: fakeLambdas(calls),
      ecsTasks: {
        [INFRASTRUCTURE_TASK]: () => {
          attempts += 1;
          return Promise.reject(Object.assign(new Error('pulumi up failed'), { exitCode: 2 }));
        },
      },
    });

    expect(attempts).toBe(3);
    // The slot goes back before the failure is recorded, and the error reaches RecordFailure unchanged.
    expect(calls.slice(-2).map((call) => call.step)).toEqual(['ReleaseInfrastructureSlot', 'RecordFailure']);
    const recorded = calls.at(-1);
    expect(recorded?.step).toBe('RecordFailure');
    const { error } = recorded?.event as { error: { Error: string; Cause: string } };
    expect(error.Error).toBe('States.TaskFailed');
    expect(JSON.parse(error.Cause)).toMatchObject({
      LastStatus: 'STOPPED',
      StopCode: 'EssentialContainerExited',
      TaskDefinitionArn: INFRASTRUCTURE_TASK,
      Containers: [{ Name: 'infrastructure', ExitCode: 2 }],
    });
    // What the program said stays in its log, as on ECS: the task description carries only the exit code.
    expect(error.Cause).not.toContain('pulumi up failed');
    expect(finished).toMatchObject({ status: 'FAILED', error: 'Kiln.ProvisioningFailed' });
  });

  it("waits its turn when RunTask is refused for capacity (the account's Fargate quota) instead of failing the order", async () => {
    const calls: Call[] = [];
    let running = 0;
    let mostAtOnce = 0;
    service = await startStepFunctionsService({
      stateMachines: { provision: renderWorkflow('provision', substitutions) },
      lambdas: fakeLambdas(calls),
      ecsTasks: {
        [INFRASTRUCTURE_TASK]: async () => {
          running += 1;
          mostAtOnce = Math.max(mostAtOnce, running);
          await new Promise((resolve) => setTimeout(resolve, 50));
          running -= 1;
        },
      },
      ecsTaskLimit: 1,
      waitTimeScale: 0.001,
    });
    const sfn = sfnClient(service.endpoint);
    client = sfn;
    const started = await Promise.all(
      ['op_a', 'op_b', 'op_c'].map((operationId) =>
        sfn.send(new StartExecutionCommand({ stateMachineArn: service?.stateMachineArn('provision'), name: operationId, input: JSON.stringify({ ...input, operationId }) })),
      ),
    );
    const finished = await Promise.all(started.map(({ executionArn = '' }) => waitForFinish(sfn, executionArn)));
    expect(finished.map((execution) => execution.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(mostAtOnce).toBe(1);
    expect(calls.filter((call) => call.step === 'RecordFailure')).toEqual([]);
  });

  it('records the failure when the control plane poll gives up at its deadline', async () => {
    const calls: Call[] = [];
    let polls = 0;
    const finished = await run('provision', {
      lambdas: fakeLambdas(calls, {
        WaitForControlPlane: () => {
          polls += 1;
          if (polls > 3) throw new StepError('control-plane', 'the control plane did not come up in 20 minutes', false);
          return Promise.resolve({ ready: false, retryAfterSeconds: 10 });
        },
      }),
      ecsTasks: { [INFRASTRUCTURE_TASK]: () => Promise.resolve() },
    });

    expect(polls).toBe(4);
    expect(calls.at(-1)).toMatchObject({ step: 'RecordFailure', event: { ...input, error: { Error: 'Kiln.Permanent' } } });
    expect(finished.status).toBe('FAILED');
  });
});

describe('the deprovision workflow in the sandbox', () => {
  it('destroys the infrastructure with the same task definition, then marks the cluster deleted', async () => {
    const calls: Call[] = [];
    const finished = await run('deprovision', {
      lambdas: fakeLambdas(calls),
      ecsTasks: {
        [INFRASTRUCTURE_TASK]: (environment) => {
          calls.push({ step: 'Destroy', event: environment });
          return Promise.resolve();
        },
      },
    });

    expect(finished.status).toBe('SUCCEEDED');
    expect(calls.map((call) => call.step)).toEqual(['AwaitInfrastructureSlot', 'Destroy', 'ReleaseInfrastructureSlot', 'MarkDeleted']);
    expect(calls[1]?.event).toEqual({ KILN_STEP_ACTION: 'destroy', KILN_STEP_INPUT: JSON.stringify(input) });
    expect(calls[3]?.event).toEqual(input);
  });
});
