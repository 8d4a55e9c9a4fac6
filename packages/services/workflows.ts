import type * as StepFunctionsModule from '@aws-sdk/client-sfn';
import type { SFNClient } from '@aws-sdk/client-sfn';
import type { WorkflowInput } from '#core';
import type { WorkflowName } from '#workflows';

export type { WorkflowName };

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE' | 'MISSING';

/** How the services start and inspect workflow executions. */
export interface Workflows {
  start(workflow: WorkflowName, input: WorkflowInput): Promise<void>;
  status(workflow: WorkflowName, operationId: string): Promise<ExecutionStatus>;
  /** Ends a task that waits for its token (`.waitForTaskToken`) with `output`; false when that task is no longer waiting. */
  completeTask(taskToken: string, output: Record<string, unknown>): Promise<boolean>;
}

/**
 * Starts workflow executions named after their operation, so a retried or
 * recovered start of the same operation can never run it twice.
 */
export class WorkflowLauncher implements Workflows {
  /** `sfn` gives the client when first needed: the Step Functions client's code is loaded only then (reads never start a workflow). */
  constructor(
    private readonly sfn: () => Promise<Pick<SFNClient, 'send'>>,
    private readonly stateMachines: Record<WorkflowName, string>,
  ) {}

  /** The Step Functions client's module, imported on first use (a dynamic import costs a trip through the module loader each time). */
  private module: Promise<typeof StepFunctionsModule> | undefined;
  private sfnModule(): Promise<typeof StepFunctionsModule> {
    return (this.module ??= import('@aws-sdk/client-sfn'));
  }

  async start(workflow: WorkflowName, input: WorkflowInput): Promise<void> {
    const { ExecutionAlreadyExists, StartExecutionCommand } = await this.sfnModule();
    try {
      await (await this.sfn()).send(
        new StartExecutionCommand({
          stateMachineArn: this.stateMachines[workflow],
          name: input.operationId,
          input: JSON.stringify(input),
        }),
      );
    } catch (error) {
      // The execution for this operation already exists (running or finished): starting it again is a no-op.
      if (!(error instanceof ExecutionAlreadyExists)) throw error;
    }
  }

  executionArn(workflow: WorkflowName, operationId: string): string {
    return `${this.stateMachines[workflow].replace(':stateMachine:', ':execution:')}:${operationId}`;
  }

  async status(workflow: WorkflowName, operationId: string): Promise<ExecutionStatus> {
    const { DescribeExecutionCommand, ExecutionDoesNotExist } = await this.sfnModule();
    try {
      const result = await (await this.sfn()).send(new DescribeExecutionCommand({ executionArn: this.executionArn(workflow, operationId) }));
      return result.status ?? 'MISSING';
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return 'MISSING';
      throw error;
    }
  }

  async completeTask(taskToken: string, output: Record<string, unknown>): Promise<boolean> {
    const { SendTaskSuccessCommand } = await this.sfnModule();
    try {
      await (await this.sfn()).send(new SendTaskSuccessCommand({ taskToken, output: JSON.stringify(output) }));
      return true;
    } catch (error) {
      // The task ended meanwhile: its execution stopped, timed out, or took the token already.
      if (error instanceof Error && ['TaskTimedOut', 'TaskDoesNotExist', 'InvalidToken'].includes(error.name)) return false;
      throw error;
    }
  }
}
