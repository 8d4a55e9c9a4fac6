import { randomBytes } from 'node:crypto';
import { AwsServiceError } from '../aws-json.ts';
import { type JsonValue, TaskFailure } from './task-results.ts';

/** What the sandbox puts where a definition reads `$$.Task.Token`; each task run replaces it with a token of its own. */
export const TASK_TOKEN_PLACEHOLDER = 'kiln-sandbox:task-token';

interface OpenTask {
  resolve: (output: JsonValue) => void;
  reject: (error: Error) => void;
}

/**
 * The task tokens of `.waitForTaskToken` tasks, as Step Functions keeps them: each run of such a task gets a new
 * token, and the task waits until SendTaskSuccess or SendTaskFailure names it. A token of a task that ended (the
 * execution stopped, or the token was already used) answers TaskTimedOut, as AWS answers it.
 */
export class TaskTokens {
  private readonly open = new Map<string, OpenTask>();

  /** A new token, and the task's result once a caller sends it. The token closes when `signal` aborts. */
  issue(signal: AbortSignal): { token: string; result: Promise<JsonValue> } {
    const token = `AQ${randomBytes(96).toString('base64url')}`;
    const result = new Promise<JsonValue>((resolve, reject) => {
      this.open.set(token, { resolve, reject });
    });
    const close = (): void => {
      this.open.delete(token);
    };
    signal.addEventListener('abort', close, { once: true });
    // Nobody need await it when the execution stopped first.
    result
      .catch(() => undefined)
      .finally(() => {
        signal.removeEventListener('abort', close);
      });
    return { token, result };
  }

  succeed(token: string, output: string): void {
    let parsed: JsonValue;
    try {
      parsed = JSON.parse(output) as JsonValue;
    } catch {
      throw new AwsServiceError('InvalidOutput', 'Invalid State Machine Execution Output: the output is not valid JSON.');
    }
    this.take(token).resolve(parsed);
  }

  fail(token: string, error = '', cause = ''): void {
    // Under the error name it was sent with, so a Catch or Retry matches it.
    this.take(token).reject(new TaskFailure(error, cause));
  }

  /** A heartbeat for an open task (the sandbox does not time heartbeats). */
  heartbeat(token: string): void {
    this.find(token);
  }

  private take(token: string): OpenTask {
    const task = this.find(token);
    this.open.delete(token);
    return task;
  }

  private find(token: string): OpenTask {
    if (!/^AQ[A-Za-z0-9_-]{100,}$/.test(token)) throw new AwsServiceError('InvalidToken', 'Invalid Token: the task token is malformed.');
    const task = this.open.get(token);
    if (task === undefined) throw new AwsServiceError('TaskTimedOut', 'Task Timed Out: the task of this token is no longer running.');
    return task;
  }
}

/** The Parameters of a `.waitForTaskToken` task with every `"key.$": "$$.Task.Token"` turned into the placeholder. */
export function withTokenPlaceholder(parameters: unknown): unknown {
  if (Array.isArray(parameters)) return parameters.map(withTokenPlaceholder);
  if (typeof parameters !== 'object' || parameters === null) return parameters;
  return Object.fromEntries(
    Object.entries(parameters).map(([key, value]) =>
      key.endsWith('.$') && value === '$$.Task.Token' ? [key.slice(0, -2), TASK_TOKEN_PLACEHOLDER] : [key, withTokenPlaceholder(value)],
    ),
  );
}

/** The evaluated Parameters with the placeholder replaced by the task's token. */
export function withToken(input: JsonValue, token: string): JsonValue {
  if (input === TASK_TOKEN_PLACEHOLDER) return token;
  if (Array.isArray(input)) return input.map((item) => withToken(item, token));
  if (typeof input !== 'object' || input === null) return input;
  return Object.fromEntries(Object.entries(input).map(([key, value]) => [key, withToken(value, token)]));
}
