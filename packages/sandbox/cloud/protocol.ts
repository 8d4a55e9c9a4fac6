import type { ClusterProgramInput } from '#infra';
import type { AccountRole } from './account-roles.ts';
import type { MockCloudContext, RecordedResource } from './mocks.ts';

/** The messages between SandboxCloud and a runner process, one run per process. */
export interface RunRequest {
  kind: 'run';
  input: ClusterProgramInput;
  context: MockCloudContext;
  project: string;
  stack: string;
}

export type RunnerMessage =
  | { kind: 'ready' }
  | { kind: 'result'; outputs: unknown; resources: RecordedResource[] }
  /** IAM created a role during the run: it exists from now on, whatever the run's outcome. */
  | { kind: 'role'; role: AccountRole }
  | { kind: 'failed'; message: string };

export function isRunRequest(message: unknown): message is RunRequest {
  return typeof message === 'object' && message !== null && (message as { kind?: unknown }).kind === 'run';
}

export function isRunnerMessage(message: unknown): message is RunnerMessage {
  const kind = typeof message === 'object' && message !== null ? (message as { kind?: unknown }).kind : undefined;
  return kind === 'ready' || kind === 'result' || kind === 'role' || kind === 'failed';
}
