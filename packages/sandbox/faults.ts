import { StepError } from '#core';

/** A failure to inject into one workflow task, for clusters of one name (or every cluster). */
export interface TaskFaultRule {
  /** The Task state to fail, e.g. `Addons` or `Infrastructure`. */
  task: string;
  clusterName?: string;
  /** How many invocations fail before the task works again; default every one. */
  times?: number;
  /** Transient faults are retried by the workflow; permanent ones are caught. */
  retriable?: boolean;
  message?: string;
}

/**
 * Fault injection for the sandbox's task bindings: a matching task throws the
 * same typed error a real step failure would, before the handler runs.
 */
export class FaultInjector {
  private readonly rules: (TaskFaultRule & { remaining: number })[] = [];

  inject(rule: TaskFaultRule): void {
    this.rules.push({ ...rule, remaining: rule.times ?? Number.POSITIVE_INFINITY });
  }

  /** Injected invocations of a task that have not failed yet. */
  unused(task: string): number {
    return this.rules.filter((rule) => rule.task === task).reduce((sum, rule) => sum + rule.remaining, 0);
  }

  clear(): void {
    this.rules.length = 0;
  }

  /** Throws if a rule matches this invocation, and counts it down. */
  check(task: string, clusterName: string | undefined): void {
    const rule = this.rules.find(
      (candidate) => candidate.task === task && candidate.remaining > 0 && (candidate.clusterName === undefined || candidate.clusterName === clusterName),
    );
    if (rule === undefined) return;
    rule.remaining -= 1;
    throw new StepError(task, rule.message ?? `Injected fault in ${task}.`, rule.retriable ?? false);
  }
}
