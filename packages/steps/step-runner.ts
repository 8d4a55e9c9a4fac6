import { KilnError, StepError, WorkflowInput, accountRoleRefused, isAssumeRoleRefusal, withoutInternalIdentifiers } from '#core';
import type { ClusterRecord, OperationRecord, StepRecord } from '#store';
import type { StepServices } from './context.ts';

const MESSAGE_LIMIT = 500;
const TRANSIENT_NAMES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalServerError',
  'TransactionConflictException',
  'TimeoutError',
  // SSM: "There are concurrent updates for a resource that supports one update at a time" (a name still being deleted).
  'TooManyUpdates',
]);
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

function safeMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > MESSAGE_LIMIT ? `${message.slice(0, MESSAGE_LIMIT)}…` : message;
}

/**
 * What a step error says of an error Kiln did not write (AWS's, the cluster API's, the network's): who answered and
 * with what code, never its message, which names Kiln's roles, keys and account and goes to Kiln's logs instead.
 */
function foreignErrorSummary(error: Error, httpStatus: number | undefined): string {
  // The one refusal the tenant fixes on their side: their account role does not trust Kiln with the external id.
  if (isAssumeRoleRefusal(error.message)) return accountRoleRefused(error.name);
  if ((error as { $metadata?: unknown }).$metadata !== undefined) return `AWS answered ${error.name}${httpStatus === undefined ? '' : ` (HTTP ${httpStatus})`}.`;
  if (typeof (error as { code?: unknown }).code === 'number') return `The cluster's API server answered HTTP ${httpStatus ?? 'error'}.`;
  const code = errorCode(error);
  return `A call Kiln made failed (${error.name}${code === undefined ? '' : ` ${code}`}).`;
}

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const cause = (error as { cause?: unknown }).cause;
  return cause === undefined ? undefined : errorCode(cause);
}

/**
 * Decides what Step Functions should do with an error: `Kiln.Transient` is
 * retried with backoff, `Kiln.Permanent` is caught and recorded.
 */
export function toStepError(step: string, error: unknown): StepError {
  if (error instanceof StepError) return error;
  if (error instanceof KilnError) return new StepError(step, error.detail, false);
  if (error instanceof Error) {
    const status = (error as { code?: unknown; $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    const kubeStatus = typeof (error as { code?: unknown }).code === 'number' ? Number((error as { code?: unknown }).code) : undefined;
    const httpStatus = status ?? kubeStatus;
    const retriable =
      TRANSIENT_NAMES.has(error.name) ||
      TRANSIENT_CODES.has(errorCode(error) ?? '') ||
      (error as { $retryable?: unknown }).$retryable !== undefined ||
      httpStatus === undefined ||
      httpStatus === 429 ||
      httpStatus >= 500;
    return new StepError(step, foreignErrorSummary(error, httpStatus), retriable);
  }
  return new StepError(step, 'A call Kiln made failed.', true);
}

export interface StepContext {
  input: WorkflowInput;
  cluster: ClusterRecord;
  operation: OperationRecord;
  /** Outputs of an earlier step of this operation. */
  outputsOf(step: string): Record<string, unknown>;
}

export type StepResult<T extends Record<string, unknown>> = { done: true; outputs: T } | { done: false; progress?: Record<string, unknown> };

/**
 * Runs one step of an operation and records it: attempts and start time,
 * then outputs and finish time. A step that already succeeded returns its
 * recorded outputs, so a re-run workflow (after a crash) skips finished work.
 */
export async function runStep<T extends Record<string, unknown>>(
  services: Pick<StepServices, 'store' | 'log'>,
  rawInput: unknown,
  step: string,
  work: (context: StepContext) => Promise<StepResult<T>>,
  options: { polling?: boolean } = {},
): Promise<StepResult<T>> {
  const input = WorkflowInput.parse(rawInput);
  const log = services.log.child({ tenantId: input.tenantId, clusterId: input.clusterId, operationId: input.operationId, step });
  let attempt: StepRecord | undefined;
  try {
    const [operation, cluster] = await Promise.all([
      services.store.getOperation(input.tenantId, input.operationId),
      services.store.getCluster(input.tenantId, input.clusterId),
    ]);
    if (operation === undefined || cluster === undefined) {
      throw new StepError(step, 'The operation or its cluster no longer exists.', false);
    }
    const recorded = operation.steps[step];
    if (recorded?.state === 'succeeded') return { done: true, outputs: (recorded.outputs ?? {}) as T };

    const now = new Date().toISOString();
    const running: StepRecord = (attempt = {
      ...(recorded ?? { attempts: 0 }),
      state: 'running',
      startedAt: recorded?.startedAt ?? now,
      attempts: (recorded?.attempts ?? 0) + (options.polling === true && recorded?.state === 'running' ? 0 : 1),
    });
    // A polling step is called many times; count the attempt only on its first call.
    if (options.polling !== true || recorded?.state !== 'running') {
      await services.store.saveStep(input.tenantId, input.operationId, step, running, 'running');
      log.info('step started');
    }
    const context: StepContext = {
      input,
      cluster,
      operation: { ...operation, steps: { ...operation.steps, [step]: running } },
      outputsOf: (name) => operation.steps[name]?.outputs ?? {},
    };
    const result = await work(context);
    if (result.done) {
      const { error: _lastError, ...succeeded } = running;
      await services.store.saveStep(input.tenantId, input.operationId, step, {
        ...succeeded,
        state: 'succeeded',
        finishedAt: new Date().toISOString(),
        outputs: result.outputs,
      });
      log.info('step succeeded');
    } else if (result.progress !== undefined) {
      await services.store.saveStep(input.tenantId, input.operationId, step, { ...running, outputs: result.progress });
    }
    return result;
  } catch (error) {
    const stepError = toStepError(step, error);
    // The raw error stays here, under the request id the tenant's reference names; the step error says what a tenant may read.
    log.warn('step error', { error: { name: stepError.name, message: stepError.message, cause: error instanceof Error ? `${error.name}: ${safeMessage(error)}` : safeMessage(error) } });
    // What the tenant may read goes on the step record too: a step in a container (the infrastructure runner) has no
    // other way to the workflow's Catch than its exit code.
    if (attempt !== undefined) await recordStepError(services, input, step, attempt, stepError, log);
    throw stepError;
  }
}

async function recordStepError(services: Pick<StepServices, 'store'>, input: WorkflowInput, step: string, attempt: StepRecord, stepError: StepError, log: StepServices['log']): Promise<void> {
  try {
    await services.store.saveStep(input.tenantId, input.operationId, step, { ...attempt, error: withoutInternalIdentifiers(stepError.message) });
  } catch (error) {
    // The step's own error is what the workflow needs; the record is a courtesy to the tenant.
    log.warn('step error not recorded', { error });
  }
}

/** Whether a polling step has waited longer than the order lets a machine take to start, counted from its first poll. */
export function pastNodeStartupTimeout(context: StepContext, step: string): boolean {
  const startedAt = Date.parse(context.operation.steps[step]?.startedAt ?? new Date().toISOString());
  return Date.now() - startedAt > context.cluster.spec.nodeHealth.nodeStartupTimeoutMinutes * 60_000;
}
