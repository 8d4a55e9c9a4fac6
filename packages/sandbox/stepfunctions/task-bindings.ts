import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { isRecord } from '#core';
import { type JsonValue, type LocalHandlers, TaskFailure } from './task-results.ts';
import { type TaskTokens, withToken, withTokenPlaceholder } from './task-tokens.ts';

/**
 * Binds Task states to local functions the way Step Functions binds them to
 * AWS services: a Lambda ARN (or `lambda:invoke`) calls the function bound to
 * that ARN, `ecs:runTask.sync` runs the function bound to the task definition,
 * and `lambda:invoke.waitForTaskToken` calls the function with a task token and
 * waits until SendTaskSuccess or SendTaskFailure names it.
 * Failures carry the names and causes the real services produce, so Retry and
 * Catch behave as they do in AWS.
 */


/** What a Lambda function does with its event; a thrown error's `name` becomes the Step Functions error. */
export type LambdaHandler = (event: unknown) => Promise<unknown>;
/**
 * What an ECS task's container does, given its environment overrides. Throwing
 * means a non-zero exit (`exitCode` on the error, else 1).
 */
export type EcsTaskHandler = (environment: Record<string, string>) => Promise<void>;

export interface TaskBindings {
  lambdas: Record<string, LambdaHandler>;
  ecsTasks: Record<string, EcsTaskHandler>;
  region: string;
  accountId: string;
  /** ECS tasks that may run at once, and how many do (shared by every execution of the service). */
  ecsCapacity?: { limit: number; running: number };
  /** The open task tokens of the service (waitForTaskToken tasks wait for them). */
  taskTokens?: TaskTokens;
}

/** Fails the execution outright: the emulator lets no Retry or Catch match it. */
class ExecutionHalt extends Error {
  readonly isRetryable = false;
  readonly isCatchable = false;

  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface WaitSpec {
  seconds?: number;
  secondsPath?: string;
  timestamp?: string;
  timestampPath?: string;
}

type TaskSpec = { kind: 'resource'; resource: string } | { kind: 'scaled-wait'; wait: WaitSpec };

export interface PreparedDefinition {
  /** What the emulator runs: the definition with the sandbox's adjustments. */
  definition: Record<string, unknown>;
  tasks: ReadonlyMap<string, TaskSpec>;
}

// AWS lets a Task run for 99999999 s unless told otherwise; the emulator
// stops it after 60 s. This is the longest a Node timer can wait.
const UNBOUNDED_TASK_SECONDS = 2_000_000;
const SCALED_WAIT_RESOURCE = 'arn:aws:states:::kiln-sandbox:wait';

/**
 * Adjusts a definition for the emulator without touching the original. With a
 * `waitTimeScale` other than 1, Wait states become Tasks the sandbox times
 * itself (the emulator cannot scale a SecondsPath wait), and Retry intervals
 * and caps are scaled in the definition, so the emulator applies backoff and
 * jitter to them as AWS does (its interval override would drop both: a retry
 * that waits for capacity for hours in AWS would give up in minutes here).
 */
export function prepareDefinition(definition: Record<string, unknown>, waitTimeScale: number): PreparedDefinition {
  const copy = structuredClone(definition);
  const tasks = new Map<string, TaskSpec>();
  forEachState(copy, (name, state) => {
    if (state.Type === 'Wait' && waitTimeScale !== 1) {
      tasks.set(name, { kind: 'scaled-wait', wait: waitSpec(state) });
      for (const field of ['Seconds', 'SecondsPath', 'Timestamp', 'TimestampPath']) Reflect.deleteProperty(state, field);
      state.Type = 'Task';
      state.Resource = SCALED_WAIT_RESOURCE;
      state.TimeoutSeconds = UNBOUNDED_TASK_SECONDS;
    } else if (state.Type === 'Task') {
      tasks.set(name, { kind: 'resource', resource: typeof state.Resource === 'string' ? state.Resource : '' });
      // The emulator's Context Object is one for the whole execution; each run of the task gets a token of its own.
      if (typeof state.Resource === 'string' && state.Resource.endsWith('.waitForTaskToken')) state.Parameters = withTokenPlaceholder(state.Parameters);
      if (state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) {
        state.TimeoutSeconds = UNBOUNDED_TASK_SECONDS;
      }
    }
    if (waitTimeScale !== 1 && Array.isArray(state.Retry)) {
      // Scaled in the definition the emulator runs, so its backoff, cap and jitter apply as AWS applies them.
      for (const retrier of state.Retry) {
        if (!isRecord(retrier)) continue;
        retrier.IntervalSeconds = (typeof retrier.IntervalSeconds === 'number' ? retrier.IntervalSeconds : 1) * waitTimeScale;
        if (typeof retrier.MaxDelaySeconds === 'number') retrier.MaxDelaySeconds *= waitTimeScale;
      }
    }
  });
  return { definition: copy, tasks };
}

export interface ExecutionScope {
  /** Aborted when the execution stops: in-flight tasks are abandoned, new ones refused. */
  signal: AbortSignal;
  /** The Context Object, for `$$` paths in scaled waits. */
  context: Record<string, unknown>;
  waitTimeScale: number;
}

/** One local handler per Task state of the prepared definition, for one execution. */
export function localTaskHandlers(prepared: PreparedDefinition, bindings: TaskBindings, scope: ExecutionScope): LocalHandlers {
  const handlers: LocalHandlers = {};
  for (const [stateName, spec] of prepared.tasks) {
    handlers[stateName] = (input) => untilStopped(scope.signal, () => runTask(stateName, spec, input, bindings, scope));
  }
  return handlers;
}

async function runTask(
  stateName: string,
  spec: TaskSpec,
  input: JsonValue,
  bindings: TaskBindings,
  scope: ExecutionScope,
): Promise<JsonValue> {
  if (spec.kind === 'scaled-wait') return scaledWait(spec.wait, input, scope);
  const { resource } = spec;
  if (/^arn:[^:]+:lambda:/.test(resource)) {
    return invokeLambda(requireLambda(bindings, resource, stateName), input);
  }
  if (/^arn:[^:]+:states:::lambda:invoke$/.test(resource)) {
    const parameters = LambdaInvokeParameters.safeParse(input);
    if (!parameters.success) {
      throw new TaskFailure('Lambda.InvalidRequestContentException', `Invalid lambda:invoke parameters: ${z.prettifyError(parameters.error)}`);
    }
    const payload = await invokeLambda(requireLambda(bindings, parameters.data.FunctionName, stateName), toJson(parameters.data.Payload));
    return toJson({
      ExecutedVersion: '$LATEST',
      Payload: payload,
      SdkHttpMetadata: { HttpStatusCode: 200 },
      SdkResponseMetadata: { RequestId: randomUUID() },
      StatusCode: 200,
    });
  }
  if (/^arn:[^:]+:states:::ecs:runTask\.sync$/.test(resource)) {
    return runEcsTask(stateName, input, bindings);
  }
  if (/^arn:[^:]+:states:::lambda:invoke\.waitForTaskToken$/.test(resource) && bindings.taskTokens !== undefined) {
    const parameters = LambdaInvokeParameters.safeParse(input);
    if (!parameters.success) {
      throw new TaskFailure('Lambda.InvalidRequestContentException', `Invalid lambda:invoke parameters: ${z.prettifyError(parameters.error)}`);
    }
    const { token, result } = bindings.taskTokens.issue(scope.signal);
    // The function's own answer is dropped; its failure fails the task. The task's result is what the token is sent with.
    await invokeLambda(requireLambda(bindings, parameters.data.FunctionName, stateName), withToken(toJson(parameters.data.Payload), token));
    return result;
  }
  throw unbound(stateName, resource, 'the sandbox binds Lambda ARNs, lambda:invoke, lambda:invoke.waitForTaskToken and ecs:runTask.sync only');
}

const LambdaInvokeParameters = z.object({ FunctionName: z.string(), Payload: z.unknown().optional() });

function requireLambda(bindings: TaskBindings, functionRef: string, stateName: string): LambdaHandler {
  const direct = bindings.lambdas[functionRef];
  if (direct) return direct;
  // A qualified ARN (version or alias) or a bare function name reaches the same function.
  const unqualified = /^(arn:[^:]+:lambda:[^:]+:\d+:function:[^:]+):[^:]+$/.exec(functionRef)?.[1];
  const byName = Object.keys(bindings.lambdas).find((arn) => arn.endsWith(`:function:${functionRef}`));
  const handler = bindings.lambdas[unqualified ?? byName ?? ''];
  if (handler) return handler;
  const bound = Object.keys(bindings.lambdas).join(', ') || 'none';
  throw unbound(stateName, functionRef, `bound Lambda functions: ${bound}`);
}

async function invokeLambda(handler: LambdaHandler, event: JsonValue): Promise<JsonValue> {
  let result: unknown;
  try {
    result = await handler(structuredClone(event));
  } catch (error) {
    throw lambdaFunctionError(error);
  }
  try {
    return toJson(result);
  } catch (error) {
    throw lambdaFunctionError(error, 'Runtime.MarshalError');
  }
}

/** Lambda reports a function error as `{errorType, errorMessage}`; Step Functions names the error after errorType. */
function lambdaFunctionError(error: unknown, type?: string): TaskFailure {
  const errorType = type ?? (error instanceof Error ? error.name : 'Error');
  const errorMessage = error instanceof Error ? error.message : String(error);
  return new TaskFailure(errorType, JSON.stringify({ errorType, errorMessage }));
}

const RunTaskParameters = z.object({
  Cluster: z.string().optional(),
  TaskDefinition: z.string(),
  LaunchType: z.string().optional(),
  Overrides: z
    .object({
      ContainerOverrides: z
        .array(z.object({ Name: z.string(), Environment: z.array(z.object({ Name: z.string(), Value: z.string() })).optional() }))
        .optional(),
    })
    .loose()
    .optional(),
});
type RunTaskParameters = z.infer<typeof RunTaskParameters>;

async function runEcsTask(stateName: string, input: JsonValue, bindings: TaskBindings): Promise<JsonValue> {
  const parsed = RunTaskParameters.safeParse(input);
  if (!parsed.success) {
    throw new TaskFailure('ECS.InvalidParameterException', `Invalid runTask parameters: ${z.prettifyError(parsed.error)}`);
  }
  const parameters = parsed.data;
  const run = bindings.ecsTasks[parameters.TaskDefinition];
  if (!run) {
    const bound = Object.keys(bindings.ecsTasks).join(', ') || 'none';
    throw unbound(stateName, parameters.TaskDefinition, `bound task definitions: ${bound}`);
  }
  const environment: Record<string, string> = {};
  for (const container of parameters.Overrides?.ContainerOverrides ?? []) {
    for (const variable of container.Environment ?? []) environment[variable.Name] = variable.Value;
  }
  const capacity = bindings.ecsCapacity ?? { limit: Number.POSITIVE_INFINITY, running: 0 };
  if (capacity.running >= capacity.limit) {
    // What ECS answers RunTask when the account's Fargate vCPU quota is taken; Step Functions names it so.
    throw new TaskFailure('ECS.AmazonECSException', "You've reached the limit on the number of vCPUs you can run concurrently (Service: AmazonECS; Status Code: 400; Error Code: LimitExceededException)");
  }
  capacity.running += 1;
  const startedAt = Date.now();
  try {
    await run(environment);
  } catch (error) {
    // A container that exits non-zero stops its task with its exit code; what the program printed goes to its log
    // stream, never into the task description (a container's `reason` is ECS's own, such as an image it could not pull:
    // docs.aws.amazon.com/AmazonECS/latest/developerguide/stopped-task-errors.html).
    const description = ecsTaskDescription(parameters, bindings, startedAt, { exitCode: exitCodeOf(error) });
    // A .sync task that stops badly fails as States.TaskFailed with the task description as Cause.
    throw new TaskFailure('States.TaskFailed', JSON.stringify(description));
  } finally {
    capacity.running -= 1;
  }
  return toJson(ecsTaskDescription(parameters, bindings, startedAt, { exitCode: 0 }));
}

function exitCodeOf(error: unknown): number {
  if (isRecord(error) && typeof error.exitCode === 'number' && error.exitCode !== 0) return error.exitCode;
  return 1;
}

/** Shaped like the stopped task Step Functions returns from ecs:runTask.sync (PascalCase, epoch milliseconds). */
function ecsTaskDescription(
  parameters: RunTaskParameters,
  bindings: TaskBindings,
  startedAt: number,
  outcome: { exitCode: number; reason?: string },
): Record<string, unknown> {
  const { region, accountId } = bindings;
  const cluster = parameters.Cluster ?? 'default';
  const clusterArn = cluster.startsWith('arn:') ? cluster : `arn:aws:ecs:${region}:${accountId}:cluster/${cluster}`;
  const clusterName = clusterArn.slice(clusterArn.lastIndexOf('/') + 1);
  const taskId = randomBytes(16).toString('hex');
  const taskArn = `arn:aws:ecs:${region}:${accountId}:task/${clusterName}/${taskId}`;
  const taskDefinitionArn = parameters.TaskDefinition.startsWith('arn:')
    ? parameters.TaskDefinition
    : `arn:aws:ecs:${region}:${accountId}:task-definition/${parameters.TaskDefinition}`;
  const containerNames = parameters.Overrides?.ContainerOverrides?.map((container) => container.Name) ?? [];
  const containers = (containerNames.length > 0 ? containerNames : ['main']).map((name, index) => ({
    ContainerArn: `arn:aws:ecs:${region}:${accountId}:container/${clusterName}/${taskId}/${randomUUID()}`,
    ExitCode: index === 0 ? outcome.exitCode : 0,
    LastStatus: 'STOPPED',
    Name: name,
    ...(index === 0 && outcome.reason !== undefined ? { Reason: outcome.reason } : {}),
    TaskArn: taskArn,
  }));
  const stoppedAt = Date.now();
  return {
    Attachments: [],
    AvailabilityZone: `${region}a`,
    ClusterArn: clusterArn,
    Containers: containers,
    CreatedAt: startedAt,
    DesiredStatus: 'STOPPED',
    LastStatus: 'STOPPED',
    LaunchType: parameters.LaunchType ?? 'FARGATE',
    Overrides: parameters.Overrides ?? { ContainerOverrides: [] },
    PlatformVersion: '1.4.0',
    StartedAt: startedAt,
    StopCode: 'EssentialContainerExited',
    StoppedAt: stoppedAt,
    StoppedReason: 'Essential container in task exited',
    TaskArn: taskArn,
    TaskDefinitionArn: taskDefinitionArn,
  };
}

function unbound(stateName: string, resource: string, detail: string): ExecutionHalt {
  return new ExecutionHalt('Sandbox.UnboundResource', `Task state '${stateName}' calls ${resource}, which the sandbox has no handler for (${detail}).`);
}

async function scaledWait(spec: WaitSpec, input: JsonValue, scope: ExecutionScope): Promise<JsonValue> {
  await sleep(waitSeconds(spec, input, scope.context) * 1000 * scope.waitTimeScale, scope.signal);
  return input;
}

function waitSeconds(spec: WaitSpec, input: JsonValue, context: Record<string, unknown>): number {
  if (spec.seconds !== undefined) return spec.seconds;
  if (spec.secondsPath !== undefined) {
    const seconds = readReferencePath(spec.secondsPath, input, context);
    if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0) {
      throw new ExecutionHalt('States.Runtime', `SecondsPath ${spec.secondsPath} must point at a non-negative integer, not ${describeJson(seconds)}.`);
    }
    return seconds;
  }
  const timestamp = spec.timestamp ?? readReferencePath(spec.timestampPath ?? '$', input, context);
  const time = typeof timestamp === 'string' ? Date.parse(timestamp) : Number.NaN;
  if (Number.isNaN(time)) {
    throw new ExecutionHalt('States.Runtime', `The Wait timestamp ${describeJson(timestamp)} is not an RFC 3339 timestamp.`);
  }
  return Math.max(0, (time - Date.now()) / 1000);
}

function waitSpec(state: Record<string, unknown>): WaitSpec {
  const spec: WaitSpec = {};
  if (typeof state.Seconds === 'number') spec.seconds = state.Seconds;
  if (typeof state.SecondsPath === 'string') spec.secondsPath = state.SecondsPath;
  if (typeof state.Timestamp === 'string') spec.timestamp = state.Timestamp;
  if (typeof state.TimestampPath === 'string') spec.timestampPath = state.TimestampPath;
  return spec;
}

/**
 * Reads an ASL Reference Path (`$.a.b`, `$['a'][0]`, `$$.Execution.Id`): the
 * only kind SecondsPath and TimestampPath accept. Undefined when nothing is there.
 */
export function readReferencePath(path: string, input: unknown, context: unknown): unknown {
  const fromContext = path.startsWith('$$');
  if (!path.startsWith('$')) throw new ExecutionHalt('States.Runtime', `'${path}' is not a reference path.`);
  const rest = path.slice(fromContext ? 2 : 1);
  const segment = /\.([^.[\]]+)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]/y;
  let value: unknown = fromContext ? context : input;
  let offset = 0;
  while (offset < rest.length) {
    segment.lastIndex = offset;
    const match = segment.exec(rest);
    if (!match) throw new ExecutionHalt('States.Runtime', `'${path}' is not a reference path.`);
    offset = segment.lastIndex;
    const [, dotted, quoted, index] = match;
    if (index !== undefined) {
      value = Array.isArray(value) ? (value as unknown[])[Number(index)] : undefined;
    } else {
      const key = dotted ?? (quoted ?? '').replace(/\\(.)/g, '$1');
      value = isRecord(value) ? value[key] : undefined;
    }
  }
  return value;
}

/** Resolves early (like the emulator's own sleep) when the execution stops. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted || ms <= 0) {
      resolve();
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Once an execution stops, its in-flight task is abandoned (as a Lambda keeps
 * running in AWS) and no new one starts: the emulator would otherwise re-run
 * a state that was waiting to retry.
 */
function untilStopped<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  const stopped = (): ExecutionHalt => new ExecutionHalt('Sandbox.ExecutionStopped', 'The execution was stopped.');
  if (signal.aborted) return Promise.reject(stopped());
  let onAbort = (): void => undefined;
  const abandoned = new Promise<never>((_resolve, reject) => {
    onAbort = () => {
      reject(stopped());
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work(), abandoned]).finally(() => {
    signal.removeEventListener('abort', onAbort);
  });
}

function describeJson(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}

function toJson(value: unknown): JsonValue {
  return JSON.parse(JSON.stringify(value ?? null)) as JsonValue;
}

function forEachState(machine: Record<string, unknown>, visit: (name: string, state: Record<string, unknown>) => void): void {
  if (!isRecord(machine.States)) return;
  for (const [name, state] of Object.entries(machine.States)) {
    if (!isRecord(state)) continue;
    visit(name, state);
    const branches: unknown[] = Array.isArray(state.Branches) ? state.Branches : [];
    const nested = [...branches, state.ItemProcessor, state.Iterator];
    for (const machineInside of nested) {
      if (isRecord(machineInside)) forEachState(machineInside, visit);
    }
  }
}
