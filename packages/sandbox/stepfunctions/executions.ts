import { randomUUID } from 'node:crypto';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import { AwsServiceError } from '../aws-json.ts';
import { type PreparedDefinition, type TaskBindings, localTaskHandlers, prepareDefinition } from './task-bindings.ts';
import type { JsonValue } from './task-results.ts';

/**
 * Step Functions' model of state machines and executions, in memory, with
 * AWS's rules and error names. Executions run in aws-local-stepfunctions; a
 * restart loses them, as the design accepts.
 */

export const EXECUTION_STATUSES = ['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE'] as const;
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number];

/** One step of an execution's progress, for tests and local debugging (no inputs or outputs). */
export interface ExecutionHistoryEntry {
  type: string;
  timestamp: Date;
  stateName?: string;
  error?: string;
}

export interface ExecutionView {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  /** The input as given to StartExecution. */
  input: string;
  output?: string;
  error?: string;
  cause?: string;
  history: ExecutionHistoryEntry[];
}

export interface StateMachineView {
  stateMachineArn: string;
  name: string;
  definition: string;
  roleArn: string;
  creationDate: Date;
}

interface LocalStateMachine extends StateMachineView {
  prepared: PreparedDefinition;
  emulator: StateMachine;
}

interface ExecutionRecord extends ExecutionView {
  sequence: number;
  stop: () => void;
  settled: Promise<void>;
  finished: PromiseWithResolversLike;
}

interface PromiseWithResolversLike {
  promise: Promise<void>;
  resolve: () => void;
}

export interface LocalStepFunctionsOptions {
  region: string;
  accountId: string;
  stateMachines: Record<string, Record<string, unknown>>;
  bindings: TaskBindings;
  waitTimeScale: number;
  log?: (entry: Record<string, unknown>) => void;
}

export interface Page<T> {
  items: T[];
  nextToken?: string;
}

const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;
const MAX_INPUT_BYTES = 256 * 1024;
// AWS: 1-80 characters, none of whitespace, brackets, wildcards, these specials or control characters.
const FORBIDDEN_NAME_CHARACTERS = /[\s<>{}[\]?*"#%\\^|~`$&,;:/]/u;

export class LocalStepFunctions {
  private readonly options: LocalStepFunctionsOptions;
  private readonly machines = new Map<string, LocalStateMachine>();
  private readonly records = new Map<string, ExecutionRecord>();
  private sequence = 0;

  constructor(options: LocalStepFunctionsOptions) {
    this.options = options;
    const creationDate = new Date();
    for (const [name, definition] of Object.entries(options.stateMachines)) {
      const prepared = prepareDefinition(definition, options.waitTimeScale);
      let emulator: StateMachine;
      try {
        // The emulator validates the definition with asl-validator, paths and ARNs included.
        emulator = new StateMachine(prepared.definition as unknown as StateMachineDefinition);
      } catch (error) {
        throw new Error(`State machine '${name}' is not valid: ${error instanceof Error ? error.message : String(error)}`);
      }
      const stateMachineArn = this.stateMachineArn(name);
      this.machines.set(stateMachineArn, {
        stateMachineArn,
        name,
        definition: JSON.stringify(definition),
        roleArn: `arn:aws:iam::${options.accountId}:role/kiln-sandbox-states`,
        creationDate,
        prepared,
        emulator,
      });
    }
  }

  stateMachineArn(name: string): string {
    return `arn:aws:states:${this.options.region}:${this.options.accountId}:stateMachine:${name}`;
  }

  startExecution(request: { stateMachineArn: string; name?: string; input?: string }): { executionArn: string; startDate: Date } {
    const machine = this.machine(request.stateMachineArn);
    const name = request.name ?? randomUUID();
    if (name.length < 1 || name.length > 80 || FORBIDDEN_NAME_CHARACTERS.test(name) || hasControlCharacter(name)) {
      throw new AwsServiceError('InvalidName', `Invalid Name: '${name}'`);
    }
    const input = request.input ?? '{}';
    const parsedInput = parseInput(input);
    const executionArn = `arn:aws:states:${this.options.region}:${this.options.accountId}:execution:${machine.name}:${name}`;
    const existing = this.records.get(executionArn);
    if (existing) {
      // AWS: the same name and input while the execution is open is the same start; anything else is a conflict.
      if (existing.status === 'RUNNING' && sameJson(existing.input, input)) {
        return { executionArn, startDate: existing.startDate };
      }
      throw new AwsServiceError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    }
    const record = this.run(machine, executionArn, name, input, parsedInput);
    this.records.set(executionArn, record);
    return { executionArn, startDate: record.startDate };
  }

  describeExecution(executionArn: string): ExecutionView {
    return view(this.record(executionArn));
  }

  stopExecution(request: { executionArn: string; error?: string; cause?: string }): { stopDate: Date } {
    const record = this.record(request.executionArn);
    if (record.status === 'RUNNING') {
      this.finish(record, 'ABORTED', { error: request.error, cause: request.cause });
      record.stop();
    }
    return { stopDate: record.stopDate ?? new Date() };
  }

  listExecutions(request: {
    stateMachineArn: string;
    statusFilter?: ExecutionStatus;
    maxResults?: number;
    nextToken?: string;
  }): Page<ExecutionView> {
    const machine = this.machine(request.stateMachineArn);
    const pageSize = pageSizeOf(request.maxResults);
    const before = request.nextToken === undefined ? Number.POSITIVE_INFINITY : decodeToken(request.nextToken);
    // Newest first, as AWS lists them; the token is a position in that order, so new starts do not shift pages.
    const matching = [...this.records.values()]
      .filter((record) => record.stateMachineArn === machine.stateMachineArn)
      .filter((record) => request.statusFilter === undefined || record.status === request.statusFilter)
      .filter((record) => record.sequence < before)
      .sort((a, b) => b.sequence - a.sequence);
    const page = matching.slice(0, pageSize);
    const last = page.at(-1);
    return {
      items: page.map(view),
      ...(matching.length > pageSize && last ? { nextToken: encodeToken(last.sequence) } : {}),
    };
  }

  describeStateMachine(stateMachineArn: string): StateMachineView {
    return machineView(this.machine(stateMachineArn));
  }

  listStateMachines(request: { maxResults?: number; nextToken?: string }): Page<StateMachineView> {
    const pageSize = pageSizeOf(request.maxResults);
    const from = request.nextToken === undefined ? 0 : decodeToken(request.nextToken);
    const machines = [...this.machines.values()].sort((a, b) => a.name.localeCompare(b.name));
    const page = machines.slice(from, from + pageSize);
    return {
      items: page.map(machineView),
      ...(from + pageSize < machines.length ? { nextToken: encodeToken(from + pageSize) } : {}),
    };
  }

  /** Every execution so far, oldest first. */
  executions(): ExecutionView[] {
    return [...this.records.values()].map(view);
  }

  /** Resolves once the execution has left RUNNING; rejects when it has not within `timeoutMs`. */
  async waitForExecution(executionArn: string, timeoutMs: number): Promise<ExecutionView> {
    const record = this.record(executionArn);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`Execution ${executionArn} is still ${record.status} after ${timeoutMs} ms`));
      }, timeoutMs);
    });
    try {
      await Promise.race([record.finished.promise, deadline]);
      return view(record);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Aborts every running execution and waits until the emulator has let go of them. */
  async shutdown(): Promise<void> {
    for (const record of this.records.values()) {
      if (record.status === 'RUNNING') {
        this.finish(record, 'ABORTED', { error: 'Sandbox.Shutdown', cause: 'The Step Functions sandbox was closed.' });
        record.stop();
      }
    }
    await Promise.all([...this.records.values()].map((record) => record.settled));
  }

  private run(machine: LocalStateMachine, executionArn: string, name: string, input: string, parsedInput: JsonValue): ExecutionRecord {
    const startDate = new Date();
    const controller = new AbortController();
    const context = {
      Execution: { Id: executionArn, Name: name, Input: parsedInput, StartTime: startDate.toISOString(), RoleArn: machine.roleArn },
      StateMachine: { Id: machine.stateMachineArn, Name: machine.name },
    };
    const handlers = localTaskHandlers(machine.prepared, this.options.bindings, {
      signal: controller.signal,
      context,
      waitTimeScale: this.options.waitTimeScale,
    });
    const run = machine.emulator.run(parsedInput, {
      overrides: { taskResourceLocalHandlers: handlers },
      context,
    });
    let resolveFinished = (): void => undefined;
    const finished = new Promise<void>((resolve) => {
      resolveFinished = resolve;
    });
    const record: ExecutionRecord = {
      executionArn,
      stateMachineArn: machine.stateMachineArn,
      name,
      status: 'RUNNING',
      startDate,
      input,
      history: [],
      sequence: ++this.sequence,
      stop: () => {
        controller.abort();
        run.abort();
      },
      settled: Promise.resolve(),
      finished: { promise: finished, resolve: resolveFinished },
    };
    record.settled = Promise.all([this.follow(record, run.result), collectHistory(record, run.eventLogs)]).then(() => undefined);
    return record;
  }

  private async follow(record: ExecutionRecord, result: Promise<JsonValue>): Promise<void> {
    try {
      const output = await result;
      this.finish(record, 'SUCCEEDED', { output: JSON.stringify(output) });
    } catch (error) {
      if (error instanceof ExecutionTimeoutError) {
        this.finish(record, 'TIMED_OUT', { error: 'States.Timeout', cause: 'The execution ran longer than its TimeoutSeconds.' });
      } else if (error instanceof ExecutionAbortedError) {
        this.finish(record, 'ABORTED', {});
      } else if (error instanceof ExecutionError && error.cause instanceof Error) {
        this.finish(record, 'FAILED', { error: error.cause.name, cause: error.cause.message });
      } else {
        this.finish(record, 'FAILED', { error: 'States.Runtime', cause: error instanceof Error ? error.message : String(error) });
      }
    }
  }

  private finish(
    record: ExecutionRecord,
    status: Exclude<ExecutionStatus, 'RUNNING'>,
    outcome: { output?: string; error?: string | undefined; cause?: string | undefined },
  ): void {
    if (record.status !== 'RUNNING') return;
    record.status = status;
    record.stopDate = new Date();
    if (outcome.output !== undefined) record.output = outcome.output;
    if (outcome.error !== undefined) record.error = outcome.error;
    if (outcome.cause !== undefined) record.cause = outcome.cause;
    // Only names and status: inputs, outputs and causes may carry customer data.
    this.options.log?.({
      msg: 'execution finished',
      executionArn: record.executionArn,
      status,
      ...(record.error === undefined ? {} : { error: record.error }),
    });
    record.finished.resolve();
  }

  private machine(stateMachineArn: string): LocalStateMachine {
    if (!/^arn:aws[a-z-]*:states:[^:]*:\d*:stateMachine:[^:]+$/.test(stateMachineArn)) {
      throw new AwsServiceError('InvalidArn', `Invalid Arn: '${stateMachineArn}'`);
    }
    const machine = this.machines.get(stateMachineArn);
    if (!machine) throw new AwsServiceError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    return machine;
  }

  private record(executionArn: string): ExecutionRecord {
    if (!/^arn:aws[a-z-]*:states:[^:]*:\d*:execution:[^:]+:[^:]+$/.test(executionArn)) {
      throw new AwsServiceError('InvalidArn', `Invalid Arn: '${executionArn}'`);
    }
    const record = this.records.get(executionArn);
    if (!record) throw new AwsServiceError('ExecutionDoesNotExist', `Execution Does Not Exist: '${executionArn}'`);
    return record;
  }
}

type EventLogs = ReturnType<StateMachine['run']>['eventLogs'];

async function collectHistory(record: ExecutionRecord, events: EventLogs): Promise<void> {
  for await (const event of events) {
    record.history.push({
      type: event.type,
      timestamp: new Date(event.timestamp),
      ...('state' in event ? { stateName: event.state.name } : {}),
      ...('Error' in event ? { error: event.Error } : {}),
    });
  }
}

function view(record: ExecutionRecord): ExecutionView {
  return {
    executionArn: record.executionArn,
    stateMachineArn: record.stateMachineArn,
    name: record.name,
    status: record.status,
    startDate: record.startDate,
    ...(record.stopDate === undefined ? {} : { stopDate: record.stopDate }),
    input: record.input,
    ...(record.output === undefined ? {} : { output: record.output }),
    ...(record.error === undefined ? {} : { error: record.error }),
    ...(record.cause === undefined ? {} : { cause: record.cause }),
    history: [...record.history],
  };
}

function machineView(machine: LocalStateMachine): StateMachineView {
  const { stateMachineArn, name, definition, roleArn, creationDate } = machine;
  return { stateMachineArn, name, definition, roleArn, creationDate };
}

function parseInput(input: string): JsonValue {
  if (Buffer.byteLength(input) > MAX_INPUT_BYTES) {
    throw new AwsServiceError('InvalidExecutionInput', 'The execution input is larger than 256 KiB.');
  }
  try {
    return JSON.parse(input) as JsonValue;
  } catch {
    throw new AwsServiceError('InvalidExecutionInput', 'Invalid State Machine Execution Input: the input is not valid JSON.');
  }
}

function hasControlCharacter(text: string): boolean {
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code <= 0x1f || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

function sameJson(a: string, b: string): boolean {
  return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
}

function pageSizeOf(maxResults: number | undefined): number {
  if (maxResults === undefined || maxResults === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(maxResults) || maxResults < 0 || maxResults > MAX_PAGE_SIZE) {
    throw new AwsServiceError('ValidationException', `maxResults must be between 0 and ${MAX_PAGE_SIZE}.`);
  }
  return maxResults;
}

function encodeToken(position: number): string {
  return Buffer.from(JSON.stringify({ position })).toString('base64url');
}

function decodeToken(token: string): number {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (typeof decoded === 'object' && decoded !== null && 'position' in decoded && typeof decoded.position === 'number') {
      return decoded.position;
    }
  } catch {
    // Falls through to the same answer as any other unreadable token.
  }
  throw new AwsServiceError('InvalidToken', 'Invalid Token: the nextToken was not issued by this service.');
}
