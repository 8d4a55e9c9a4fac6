import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import type { WorkflowInput } from '#core';
import type { WorkflowName } from '#workflows';

export type { WorkflowName };

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE' | 'MISSING';

/** How the services start and inspect workflow executions. */
export interface Workflows {
  start(workflow: WorkflowName, input: WorkflowInput): Promise<void>;
  status(workflow: WorkflowName, operationId: string): Promise<ExecutionStatus>;
}

/**
 * Starts workflow executions named after their operation, so a retried or
 * recovered start of the same operation can never run it twice.
 */
export class WorkflowLauncher implements Workflows {
  constructor(
    private readonly sfn: SFNClient,
    private readonly stateMachines: Record<WorkflowName, string>,
  ) {}

  async start(workflow: WorkflowName, input: WorkflowInput): Promise<void> {
    try {
      await this.sfn.send(
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
    try {
      const result = await this.sfn.send(new DescribeExecutionCommand({ executionArn: this.executionArn(workflow, operationId) }));
      return result.status ?? 'MISSING';
    } catch (error) {
      if (error instanceof ExecutionDoesNotExist) return 'MISSING';
      throw error;
    }
  }
}
