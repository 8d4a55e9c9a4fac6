import type { RunOptions } from 'aws-local-stepfunctions';

// What a Task state hands back, and how it fails: shared by the task bindings and the task tokens (which both settle
// a task), in a module of its own so neither imports the other for it.
export type LocalHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type LocalHandler = LocalHandlers[string];
export type JsonValue = Parameters<LocalHandler>[0];

/** The emulator reports it under `name`; a Catch receives the message as Cause. */
export class TaskFailure extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}
