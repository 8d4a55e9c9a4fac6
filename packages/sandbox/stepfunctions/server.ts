import '../polyfills.ts';
import { z } from 'zod';
import { epochSeconds, parseRequest, serveAwsJson } from '../aws-json.ts';
import { EXECUTION_STATUSES, type ExecutionView, LocalStepFunctions, type StateMachineView } from './executions.ts';
import type { EcsTaskHandler, LambdaHandler } from './task-bindings.ts';
import { TaskTokens } from './task-tokens.ts';

export interface StepFunctionsServiceOptions {
  /** 0 or absent picks a free port. */
  port?: number;
  region?: string;
  accountId?: string;
  /** Rendered ASL definitions by state machine name. */
  stateMachines: Record<string, Record<string, unknown>>;
  /** What a Task whose Resource is this Lambda function ARN runs. */
  lambdas: Record<string, LambdaHandler>;
  /** What an `ecs:runTask.sync` Task with this TaskDefinition runs. */
  ecsTasks: Record<string, EcsTaskHandler>;
  /**
   * ECS tasks that may run at once, as an account's Fargate vCPU quota allows: RunTask past it fails with
   * ECS.AmazonECSException, as ECS refuses it. Unlimited when absent.
   */
  ecsTaskLimit?: number;
  /** Multiplies Wait durations and Retry intervals; 0.001 turns seconds into milliseconds. Default 1. */
  waitTimeScale?: number;
  /** Receives one structured entry per finished execution (names and status only). */
  log?: (entry: Record<string, unknown>) => void;
}

export interface StepFunctionsService {
  /** Give it to `new SFNClient({ endpoint })`. */
  endpoint: string;
  region: string;
  stateMachineArn(name: string): string;
  /** Every execution so far, oldest first, with a short history of states. */
  executions(): ExecutionView[];
  /** Resolves once the execution has finished; rejects after `timeoutMs` (default 30 s) if it has not. */
  waitForExecution(executionArn: string, timeoutMs?: number): Promise<ExecutionView>;
  /** Aborts running executions and stops serving. */
  close(): Promise<void>;
}

/**
 * A local Step Functions service: the AWS JSON 1.0 API (StartExecution,
 * DescribeExecution, StopExecution, ListExecutions, SendTaskSuccess,
 * SendTaskFailure, SendTaskHeartbeat, DescribeStateMachine, ListStateMachines)
 * over HTTP, so `@aws-sdk/client-sfn` works unchanged.
 */
export async function startStepFunctionsService(options: StepFunctionsServiceOptions): Promise<StepFunctionsService> {
  const region = options.region ?? 'us-east-1';
  const accountId = options.accountId ?? '123456789012';
  const waitTimeScale = options.waitTimeScale ?? 1;
  if (!Number.isFinite(waitTimeScale) || waitTimeScale <= 0) {
    throw new Error(`waitTimeScale must be a positive number, not ${waitTimeScale}`);
  }
  const taskTokens = new TaskTokens();
  const engine = new LocalStepFunctions({
    region,
    accountId,
    stateMachines: options.stateMachines,
    bindings: { lambdas: options.lambdas, ecsTasks: options.ecsTasks, region, accountId, ecsCapacity: { limit: options.ecsTaskLimit ?? Number.POSITIVE_INFINITY, running: 0 }, taskTokens },
    waitTimeScale,
    ...(options.log ? { log: options.log } : {}),
  });

  const server = await serveAwsJson({
    ...(options.port === undefined ? {} : { port: options.port }),
    targetPrefix: 'AWSStepFunctions',
    contentType: 'application/x-amz-json-1.0',
    operations: {
      StartExecution: (request) => {
        const started = engine.startExecution(parseRequest(StartExecutionRequest, request));
        return { executionArn: started.executionArn, startDate: epochSeconds(started.startDate) };
      },
      DescribeExecution: (request) => describedExecution(engine.describeExecution(parseRequest(ExecutionRequest, request).executionArn)),
      StopExecution: (request) => {
        const stopped = engine.stopExecution(parseRequest(StopExecutionRequest, request));
        return { stopDate: epochSeconds(stopped.stopDate) };
      },
      ListExecutions: (request) => {
        const page = engine.listExecutions(parseRequest(ListExecutionsRequest, request));
        return { executions: page.items.map(listedExecution), ...(page.nextToken ? { nextToken: page.nextToken } : {}) };
      },
      SendTaskSuccess: (request) => {
        const { taskToken, output } = parseRequest(SendTaskSuccessRequest, request);
        taskTokens.succeed(taskToken, output);
        return {};
      },
      SendTaskFailure: (request) => {
        const { taskToken, error, cause } = parseRequest(SendTaskFailureRequest, request);
        taskTokens.fail(taskToken, error, cause);
        return {};
      },
      SendTaskHeartbeat: (request) => {
        taskTokens.heartbeat(parseRequest(TaskTokenRequest, request).taskToken);
        return {};
      },
      DescribeStateMachine: (request) =>
        describedStateMachine(engine.describeStateMachine(parseRequest(StateMachineRequest, request).stateMachineArn)),
      ListStateMachines: (request) => {
        const page = engine.listStateMachines(parseRequest(ListStateMachinesRequest, request));
        return {
          stateMachines: page.items.map((machine) => ({
            stateMachineArn: machine.stateMachineArn,
            name: machine.name,
            type: 'STANDARD',
            creationDate: epochSeconds(machine.creationDate),
          })),
          ...(page.nextToken ? { nextToken: page.nextToken } : {}),
        };
      },
    },
  });

  return {
    endpoint: server.endpoint,
    region,
    stateMachineArn: (name) => engine.stateMachineArn(name),
    executions: () => engine.executions(),
    waitForExecution: (executionArn, timeoutMs = 30_000) => engine.waitForExecution(executionArn, timeoutMs),
    close: async () => {
      await engine.shutdown();
      await server.close();
    },
  };
}

const StartExecutionRequest = z.object({
  stateMachineArn: z.string(),
  name: z.string().optional(),
  input: z.string().optional(),
  traceHeader: z.string().optional(),
});
const ExecutionRequest = z.object({ executionArn: z.string() });
const StopExecutionRequest = z.object({
  executionArn: z.string(),
  error: z.string().max(256).optional(),
  cause: z.string().max(32768).optional(),
});
const ListExecutionsRequest = z.object({
  stateMachineArn: z.string(),
  statusFilter: z.enum(EXECUTION_STATUSES).optional(),
  maxResults: z.number().optional(),
  nextToken: z.string().optional(),
});
const StateMachineRequest = z.object({ stateMachineArn: z.string() });
const TaskTokenRequest = z.object({ taskToken: z.string().min(1).max(2048) });
const SendTaskSuccessRequest = TaskTokenRequest.extend({ output: z.string().max(256 * 1024) });
const SendTaskFailureRequest = TaskTokenRequest.extend({ error: z.string().max(256).optional(), cause: z.string().max(32768).optional() });
const ListStateMachinesRequest = z.object({ maxResults: z.number().optional(), nextToken: z.string().optional() });


function listedExecution(execution: ExecutionView): Record<string, unknown> {
  return {
    executionArn: execution.executionArn,
    stateMachineArn: execution.stateMachineArn,
    name: execution.name,
    status: execution.status,
    startDate: epochSeconds(execution.startDate),
    ...(execution.stopDate ? { stopDate: epochSeconds(execution.stopDate) } : {}),
  };
}

function describedExecution(execution: ExecutionView): Record<string, unknown> {
  return {
    ...listedExecution(execution),
    input: execution.input,
    inputDetails: { included: true },
    ...(execution.output === undefined ? {} : { output: execution.output, outputDetails: { included: true } }),
    ...(execution.error === undefined ? {} : { error: execution.error }),
    ...(execution.cause === undefined ? {} : { cause: execution.cause }),
    redriveCount: 0,
    redriveStatus: 'NOT_REDRIVABLE',
  };
}

function describedStateMachine(machine: StateMachineView): Record<string, unknown> {
  return {
    stateMachineArn: machine.stateMachineArn,
    name: machine.name,
    status: 'ACTIVE',
    definition: machine.definition,
    roleArn: machine.roleArn,
    type: 'STANDARD',
    creationDate: epochSeconds(machine.creationDate),
  };
}
