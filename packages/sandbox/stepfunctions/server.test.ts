import {
  DescribeExecutionCommand,
  DescribeStateMachineCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  InvalidArn,
  InvalidName,
  ListExecutionsCommand,
  ListStateMachinesCommand,
  type SFNClient,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  StartExecutionCommand,
  StateMachineDoesNotExist,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { StepError } from '#core';
import { afterEach, describe, expect, it } from 'vitest';
import { type StepFunctionsService, type StepFunctionsServiceOptions, startStepFunctionsService } from './server.ts';
import { lambdaArn, sfnClient, waitForFinish, waitUntil } from './testing.ts';

const RETRY_TRANSIENT = [{ ErrorEquals: ['Kiln.Transient'], IntervalSeconds: 2, BackoffRate: 2, MaxAttempts: 3 }];

/** One Lambda Task, with an optional Retry and a Catch that hands the error to a Report Task. */
function singleStep(options: { retry?: boolean; catch?: boolean } = {}): Record<string, unknown> {
  return {
    StartAt: 'Step',
    States: {
      Step: {
        Type: 'Task',
        Resource: lambdaArn('step'),
        ResultPath: '$.result',
        ...(options.retry ? { Retry: RETRY_TRANSIENT } : {}),
        ...(options.catch ? { Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Report' }] } : {}),
        End: true,
      },
      ...(options.catch
        ? { Report: { Type: 'Task', Resource: lambdaArn('report'), Next: 'Failed' }, Failed: { Type: 'Fail', Error: 'Test.Failed' } }
        : {}),
    },
  };
}

let service: StepFunctionsService | undefined;
let client: SFNClient | undefined;

/** Starts the service with fast waits and a client for it; both are closed after the test. */
async function start(
  options: Partial<StepFunctionsServiceOptions> & Pick<StepFunctionsServiceOptions, 'stateMachines'>,
): Promise<{ sfn: StepFunctionsService; client: SFNClient }> {
  service = await startStepFunctionsService({ lambdas: {}, ecsTasks: {}, waitTimeScale: 0.001, ...options });
  client = sfnClient(service.endpoint);
  return { sfn: service, client };
}

afterEach(async () => {
  client?.destroy();
  await service?.close();
  client = undefined;
  service = undefined;
});

describe('the Step Functions sandbox', () => {
  it('runs an execution to success with the Lambda bound to the Task resource', async () => {
    const events: unknown[] = [];
    const { sfn, client } = await start({
      stateMachines: { single: singleStep() },
      lambdas: {
        [lambdaArn('step')]: (event) => {
          events.push(event);
          return Promise.resolve({ doubled: 42 });
        },
      },
    });

    const started = await client.send(
      new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('single'), name: 'op_1', input: JSON.stringify({ value: 21 }) }),
    );
    const finished = await waitForFinish(client, started.executionArn ?? '');

    expect(started.executionArn).toBe('arn:aws:states:us-east-1:123456789012:execution:single:op_1');
    expect(started.startDate).toBeInstanceOf(Date);
    expect(events).toEqual([{ value: 21 }]);
    expect(finished).toMatchObject({ status: 'SUCCEEDED', name: 'op_1', input: '{"value":21}' });
    expect(JSON.parse(finished.output ?? 'null')).toEqual({ value: 21, result: { doubled: 42 } });
    expect(finished.stopDate).toBeInstanceOf(Date);
  });

  it('treats a second start with the same name and input as the same execution, and anything else as a conflict', async () => {
    let calls = 0;
    const release = Promise.withResolvers<undefined>();
    const { sfn, client } = await start({
      stateMachines: { single: singleStep() },
      lambdas: {
        [lambdaArn('step')]: async () => {
          calls += 1;
          return release.promise;
        },
      },
    });
    const request = { stateMachineArn: sfn.stateMachineArn('single'), name: 'op_2', input: '{"clusterId":"cls_1"}' };

    const first = await client.send(new StartExecutionCommand(request));
    const again = await client.send(new StartExecutionCommand({ ...request, input: '{ "clusterId": "cls_1" }' }));
    await expect(client.send(new StartExecutionCommand({ ...request, input: '{"clusterId":"cls_2"}' }))).rejects.toBeInstanceOf(
      ExecutionAlreadyExists,
    );

    expect(again.executionArn).toBe(first.executionArn);
    expect(again.startDate).toEqual(first.startDate);
    await waitUntil(() => calls > 0, 'the step runs');
    release.resolve(undefined);
    expect((await waitForFinish(client, first.executionArn ?? '')).status).toBe('SUCCEEDED');
    expect(calls).toBe(1);
    // Like AWS, a closed execution's name cannot be started again, whatever the input.
    await expect(client.send(new StartExecutionCommand(request))).rejects.toBeInstanceOf(ExecutionAlreadyExists);
  });

  it('retries a Kiln.Transient error with backoff and then succeeds', async () => {
    let calls = 0;
    const { sfn, client } = await start({
      stateMachines: { single: singleStep({ retry: true }) },
      lambdas: {
        [lambdaArn('step')]: () => {
          calls += 1;
          if (calls < 3) throw new StepError('plan', 'the API is busy', true);
          return Promise.resolve('done');
        },
      },
    });

    const { executionArn = '' } = await client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('single') }));
    const finished = await waitForFinish(client, executionArn);

    expect(finished.status).toBe('SUCCEEDED');
    expect(calls).toBe(3);
    const history = (await sfn.waitForExecution(executionArn)).history;
    expect(history.filter((entry) => entry.type === 'StateRetried')).toHaveLength(2);
    expect(history.filter((entry) => entry.type === 'StateFailed').map((entry) => entry.error)).toEqual(['Kiln.Transient', 'Kiln.Transient']);
  });

  it('does not retry Kiln.Permanent; the Catch passes {Error, Cause} shaped like a Lambda function error', async () => {
    const reports: unknown[] = [];
    let calls = 0;
    const { sfn, client } = await start({
      stateMachines: { single: singleStep({ retry: true, catch: true }) },
      lambdas: {
        [lambdaArn('step')]: () => {
          calls += 1;
          throw new StepError('plan', 'the order cannot be built', false);
        },
        [lambdaArn('report')]: (event) => {
          reports.push(event);
          return Promise.resolve(null);
        },
      },
    });

    const { executionArn = '' } = await client.send(
      new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('single'), input: '{"operationId":"op_3"}' }),
    );
    const finished = await waitForFinish(client, executionArn);

    expect(calls).toBe(1);
    expect(reports).toEqual([
      {
        operationId: 'op_3',
        error: { Error: 'Kiln.Permanent', Cause: JSON.stringify({ errorType: 'Kiln.Permanent', errorMessage: 'the order cannot be built' }) },
      },
    ]);
    expect(finished).toMatchObject({ status: 'FAILED', error: 'Test.Failed' });
  });

  it('fails the execution clearly, past any Catch, when a Task resource has no handler', async () => {
    const { sfn, client } = await start({ stateMachines: { single: singleStep({ catch: true }) } });

    const { executionArn = '' } = await client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('single') }));
    const finished = await waitForFinish(client, executionArn);

    expect(finished.status).toBe('FAILED');
    expect(finished.error).toBe('Sandbox.UnboundResource');
    expect(finished.cause).toContain(lambdaArn('step'));
  });

  it('stops a running execution and never calls its handlers again', async () => {
    let calls = 0;
    const release = Promise.withResolvers<undefined>();
    const { sfn, client } = await start({
      stateMachines: {
        twoSteps: {
          StartAt: 'First',
          States: {
            First: { Type: 'Task', Resource: lambdaArn('first'), Next: 'Second' },
            Second: { Type: 'Task', Resource: lambdaArn('second'), End: true },
          },
        },
      },
      lambdas: {
        [lambdaArn('first')]: async () => {
          calls += 1;
          return release.promise;
        },
        [lambdaArn('second')]: () => {
          calls += 1;
          return Promise.resolve(null);
        },
      },
    });
    const { executionArn = '' } = await client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('twoSteps') }));
    await waitUntil(() => calls === 1, 'the first step runs');

    const stopped = await client.send(new StopExecutionCommand({ executionArn, error: 'Kiln.Cancelled', cause: 'deleted by the user' }));
    release.resolve(undefined);
    const described = await client.send(new DescribeExecutionCommand({ executionArn }));
    await sfn.waitForExecution(executionArn);

    expect(stopped.stopDate).toBeInstanceOf(Date);
    expect(described).toMatchObject({ status: 'ABORTED', error: 'Kiln.Cancelled', cause: 'deleted by the user' });
    expect(calls).toBe(1);
  });

  it('lists executions newest first, filtered by status, a page at a time', async () => {
    const release = Promise.withResolvers<undefined>();
    const { sfn, client } = await start({
      stateMachines: { single: singleStep() },
      lambdas: { [lambdaArn('step')]: (event) => (JSON.stringify(event).includes('hold') ? release.promise : Promise.resolve(null)) },
    });
    const stateMachineArn = sfn.stateMachineArn('single');
    for (const name of ['a', 'b', 'c']) {
      const { executionArn = '' } = await client.send(new StartExecutionCommand({ stateMachineArn, name }));
      await waitForFinish(client, executionArn);
    }
    await client.send(new StartExecutionCommand({ stateMachineArn, name: 'held', input: '{"hold":true}' }));

    const firstPage = await client.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'SUCCEEDED', maxResults: 2 }));
    const secondPage = await client.send(
      new ListExecutionsCommand({ stateMachineArn, statusFilter: 'SUCCEEDED', maxResults: 2, nextToken: firstPage.nextToken }),
    );
    const running = await client.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING' }));

    expect(firstPage.executions?.map((execution) => execution.name)).toEqual(['c', 'b']);
    expect(secondPage.executions?.map((execution) => execution.name)).toEqual(['a']);
    expect(secondPage.nextToken).toBeUndefined();
    expect(running.executions?.map((execution) => [execution.name, execution.status])).toEqual([['held', 'RUNNING']]);
    release.resolve(undefined);
  });

  it('answers with the AWS exceptions for unknown or malformed names and ARNs', async () => {
    const { sfn, client } = await start({ stateMachines: { single: singleStep() } });
    const unknownExecution = 'arn:aws:states:us-east-1:123456789012:execution:single:never-started';

    await expect(client.send(new DescribeExecutionCommand({ executionArn: unknownExecution }))).rejects.toBeInstanceOf(ExecutionDoesNotExist);
    await expect(client.send(new DescribeExecutionCommand({ executionArn: 'not-an-arn' }))).rejects.toBeInstanceOf(InvalidArn);
    await expect(
      client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('missing') })),
    ).rejects.toBeInstanceOf(StateMachineDoesNotExist);
    await expect(
      client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('single'), name: 'has space' })),
    ).rejects.toBeInstanceOf(InvalidName);
    await expect(
      client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('single'), input: '{not json' })),
    ).rejects.toMatchObject({ name: 'InvalidExecutionInput' });
  });

  it('describes and lists its state machines', async () => {
    const definition = singleStep();
    const { sfn, client } = await start({ stateMachines: { single: definition } });

    const described = await client.send(new DescribeStateMachineCommand({ stateMachineArn: sfn.stateMachineArn('single') }));
    const listed = await client.send(new ListStateMachinesCommand({}));

    expect(described).toMatchObject({ name: 'single', status: 'ACTIVE', type: 'STANDARD' });
    expect(JSON.parse(described.definition ?? 'null')).toEqual(definition);
    expect(listed.stateMachines?.map((machine) => machine.stateMachineArn)).toEqual([sfn.stateMachineArn('single')]);
  });

  it('refuses an invalid definition when it starts', async () => {
    await expect(
      startStepFunctionsService({
        stateMachines: { broken: { StartAt: 'Nowhere', States: { Step: { Type: 'Pass', End: true } } } },
        lambdas: {},
        ecsTasks: {},
      }),
    ).rejects.toThrow(/broken/);
  });

  it('waits on a waitForTaskToken task until its token is sent, with a token of its own per run; a spent or stopped token is refused', async () => {
    const tokens: string[] = [];
    const machine = {
      StartAt: 'Queue',
      States: {
        Queue: {
          Type: 'Task',
          Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
          Parameters: { FunctionName: lambdaArn('queue'), Payload: { 'value.$': '$.value', 'taskToken.$': '$$.Task.Token' } },
          ResultPath: '$.granted',
          Catch: [{ ErrorEquals: ['Kiln.Refused'], ResultPath: '$.error', Next: 'Refused' }],
          End: true,
        },
        Refused: { Type: 'Pass', End: true },
      },
    };
    const { sfn, client } = await start({
      stateMachines: { queue: machine },
      lambdas: {
        [lambdaArn('queue')]: (event) => {
          tokens.push((event as { taskToken: string }).taskToken);
          return Promise.resolve({ queued: true });
        },
      },
    });
    const run = async (name: string) => {
      const before = tokens.length;
      const { executionArn = '' } = await client.send(new StartExecutionCommand({ stateMachineArn: sfn.stateMachineArn('queue'), name, input: '{"value":1}' }));
      await waitUntil(() => tokens.length > before, `the ${name} task has its token`);
      return { executionArn, token: tokens.at(-1) ?? '' };
    };

    const granted = await run('granted');
    // Still waiting: the function's own answer does not end the task.
    expect((await client.send(new DescribeExecutionCommand({ executionArn: granted.executionArn }))).status).toBe('RUNNING');
    await client.send(new SendTaskSuccessCommand({ taskToken: granted.token, output: '{"slot":3}' }));
    expect(JSON.parse((await waitForFinish(client, granted.executionArn)).output ?? '{}')).toEqual({ value: 1, granted: { slot: 3 } });
    await expect(client.send(new SendTaskSuccessCommand({ taskToken: granted.token, output: '{}' }))).rejects.toMatchObject({ name: 'TaskTimedOut' });

    const refused = await run('refused');
    expect(refused.token).not.toBe(granted.token);
    await client.send(new SendTaskFailureCommand({ taskToken: refused.token, error: 'Kiln.Refused', cause: 'no room' }));
    const failed = await waitForFinish(client, refused.executionArn);
    expect(failed.status).toBe('SUCCEEDED');
    expect(JSON.parse(failed.output ?? '{}')).toMatchObject({ error: { Error: 'Kiln.Refused', Cause: 'no room' } });

    const stopped = await run('stopped');
    await client.send(new StopExecutionCommand({ executionArn: stopped.executionArn }));
    await expect(client.send(new SendTaskSuccessCommand({ taskToken: stopped.token, output: '{}' }))).rejects.toMatchObject({ name: 'TaskTimedOut' });
    await expect(client.send(new SendTaskSuccessCommand({ taskToken: 'not-a-token', output: '{}' }))).rejects.toMatchObject({ name: 'InvalidToken' });
    const open = await run('open');
    await expect(client.send(new SendTaskSuccessCommand({ taskToken: open.token, output: '{not json' }))).rejects.toMatchObject({ name: 'InvalidOutput' });
  });
});
