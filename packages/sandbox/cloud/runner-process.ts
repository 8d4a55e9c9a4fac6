import { fork, type ChildProcess } from 'node:child_process';
import { Socket } from 'node:net';
import { setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { StepError } from '#core';
import { INFRASTRUCTURE_STEP } from '#infra';
import type { AccountRole } from './account-roles.ts';
import type { RecordedResource } from './mocks.ts';
import { isRunnerMessage, type RunRequest } from './protocol.ts';
import { runnerModule } from './runner-module.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const STDERR_TAIL = 2_000;
/**
 * The runners' niceness. In production each run is a Fargate task on a machine of its own, beside DynamoDB and Step
 * Functions rather than on them; here they share this machine's cores with DynamoDB Local and the process that plays
 * the Lambda functions. At the same priority, sixteen runners starved both (the 1000-order burst had DynamoDB Local at
 * 15% of a core and 800 calls queued for a connection), so granting the next run and every other step crawled.
 */
const RUNNER_NICENESS = 10;
const MESSAGE_LIMIT = 500;

export interface RunResult {
  outputs: unknown;
  resources: RecordedResource[];
}

function truncate(text: string): string {
  return text.length > MESSAGE_LIMIT ? `${text.slice(0, MESSAGE_LIMIT)}...` : text;
}

/**
 * One child process that runs one cluster program. It starts loading Pulumi
 * as soon as it is created, so a spare one is warm by the time a run needs it.
 */
export class RunnerProcess {
  readonly ready: Promise<void>;
  private readonly child: ChildProcess;
  /** Settles with the reason once the child has exited or could not be started. */
  private readonly gone: Promise<string>;
  private stderr = '';
  private exited = false;
  private isReady = false;

  constructor() {
    this.child = fork(runnerModule(), [], {
      cwd: REPO_ROOT,
      execArgv: [],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    if (this.child.pid !== undefined) {
      try {
        setPriority(this.child.pid, RUNNER_NICENESS);
      } catch {
        // Only the sharing of cores changes: a system that refuses leaves the runner at the parent's priority.
      }
    }
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL);
    });
    this.gone = new Promise<string>((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exited = true;
        resolve(`exited (${signal ?? String(code)})`);
      });
      this.child.once('error', (error) => {
        this.kill();
        this.exited = true;
        resolve(`failed (${error.message})`);
      });
    });
    this.ready = new Promise<void>((resolve, reject) => {
      const onMessage = (message: unknown) => {
        if (isRunnerMessage(message) && message.kind === 'ready') {
          this.isReady = true;
          this.child.off('message', onMessage);
          resolve();
        }
      };
      this.child.on('message', onMessage);
      void this.gone.then((reason) => {
        this.child.off('message', onMessage);
        reject(this.crashed(`${reason} while loading`));
      });
    });
    // A spare that dies unused is simply replaced; nobody waits on it yet.
    this.ready.catch(() => undefined);
    this.setHeld(false);
  }

  /** The child's process id (undefined when it could not be started). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Alive and not yet used. */
  get usable(): boolean {
    return !this.exited && this.child.connected;
  }

  get warm(): boolean {
    return this.isReady && this.usable;
  }

  /** `onRole` hears of every IAM role the program's resources create, as they are created. */
  run(request: RunRequest, timeoutMs: number, onRole: (role: AccountRole) => void = () => undefined): Promise<RunResult> {
    this.setHeld(true);
    return new Promise<RunResult>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.child.off('message', onMessage);
      };
      const timer = setTimeout(() => {
        cleanup();
        this.kill();
        reject(new StepError(INFRASTRUCTURE_STEP, `sandbox program run timed out after ${timeoutMs} ms`, true));
      }, timeoutMs);
      const onMessage = (message: unknown) => {
        if (!isRunnerMessage(message)) return;
        if (message.kind === 'role') {
          onRole(message.role);
        } else if (message.kind === 'result') {
          cleanup();
          this.release();
          resolve({ outputs: message.outputs, resources: message.resources });
        } else if (message.kind === 'failed') {
          cleanup();
          this.release();
          reject(new StepError(INFRASTRUCTURE_STEP, `sandbox program failed: ${truncate(message.message)}`, false));
        }
      };
      this.child.on('message', onMessage);
      // Once a run has answered, the child's normal exit settles nothing.
      void this.gone.then((reason) => {
        cleanup();
        reject(this.crashed(`${reason} before answering`));
      });
      this.ready.then(
        () =>
          this.child.send(request, (error) => {
            if (error) {
              cleanup();
              reject(this.crashed(`refused the run (${error.message})`));
            }
          }),
        (error: unknown) => {
          cleanup();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  /** The runner exits when its channel closes; it answers once, so nothing is lost. */
  private release(): void {
    // Not from inside the 'message' handler: Node goes on emitting the other messages of the same read from the
    // channel, which a disconnect has just set to null (node:internal/child_process reads channel[kPendingMessages]).
    setImmediate(() => {
      if (this.child.connected) this.child.disconnect();
    });
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private crashed(what: string): StepError {
    const tail = this.stderr.trim();
    return new StepError(INFRASTRUCTURE_STEP, truncate(`sandbox runner ${what}${tail ? `: ${tail}` : ''}`), true);
  }

  /** An idle spare must not keep the parent alive; a running one must. */
  private setHeld(held: boolean): void {
    const handles: { ref(): unknown; unref(): unknown }[] = [this.child];
    if (this.child.channel) handles.push(this.child.channel);
    if (this.child.stderr instanceof Socket) handles.push(this.child.stderr);
    for (const handle of handles) {
      if (held) handle.ref();
      else handle.unref();
    }
  }
}
