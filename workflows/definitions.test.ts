import { workflowStepOrder } from '#core';
import {
  WORKFLOW_BOOKKEEPING_STATES,
  WORKFLOW_NAMES,
  WORKFLOW_STEP_STATES,
  exampleSubstitutions,
  renderWorkflow,
  workflowDefinitionProblems,
  workflowPlaceholders,
} from '#workflows';
import { describe, expect, it } from 'vitest';

const TRANSIENT_ERRORS = [
  'Kiln.Transient',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];

type State = Record<string, unknown>;

/** The states that run while an operation may hold an infrastructure slot (waiting for it, or running Pulumi). */
const SLOT_HOLDING_STATES = ['AwaitInfrastructureSlot', 'Infrastructure', 'Destroy'];

function rendered(name: (typeof WORKFLOW_NAMES)[number]): Record<string, unknown> {
  return renderWorkflow(name, exampleSubstitutions(workflowPlaceholders(name)));
}

function statesOf(definition: Record<string, unknown>): Record<string, State> {
  return definition.States as Record<string, State>;
}

describe('asl-validator as the workflow check uses it', () => {
  it('rejects a definition with a transition to a missing state', () => {
    const broken = rendered('provision');
    const plan = statesOf(broken).Plan;
    if (plan) plan.Next = 'Nowhere';

    expect(workflowDefinitionProblems(broken).join('\n')).toMatch(/MISSING_TRANSITION_TARGET.*Nowhere/);
  });

  it('rejects a ResultPath that is not a JSONPath', () => {
    const broken = rendered('deprovision');
    const destroy = statesOf(broken).Destroy;
    if (destroy) destroy.ResultPath = 'error';

    expect(workflowDefinitionProblems(broken)).not.toEqual([]);
  });
});

describe.each(WORKFLOW_NAMES)('the %s workflow', (name) => {
  it('is valid once rendered, with no placeholder left', () => {
    const definition = rendered(name);

    expect(workflowDefinitionProblems(definition)).toEqual([]);
    expect(JSON.stringify(definition)).not.toContain('${');
  });

  it('refuses to render with a substitution missing', () => {
    const [first = '', ...rest] = workflowPlaceholders(name);
    const incomplete = exampleSubstitutions(rest);

    expect(() => renderWorkflow(name, incomplete)).toThrow(first);
  });

  it('has a Task state for every step the operation reports, and no unnamed ones', () => {
    const taskStates = Object.entries(statesOf(rendered(name)))
      .filter(([, state]) => state.Type === 'Task')
      .map(([stateName]) => stateName);
    const stepStates: Record<string, string> = WORKFLOW_STEP_STATES[name];

    expect(Object.keys(stepStates).sort()).toEqual([...workflowStepOrder(name)].sort());
    expect(taskStates.sort()).toEqual([...Object.values(stepStates), ...WORKFLOW_BOOKKEEPING_STATES[name]].sort());
  });

  it('retries transient errors in every Task and sends every other failure to RecordFailure', () => {
    const states = statesOf(rendered(name));
    for (const [stateName, state] of Object.entries(states).filter(([, candidate]) => candidate.Type === 'Task')) {
      const retry = state.Retry as State[] | undefined;
      expect(retry?.[0], stateName).toMatchObject({
        ErrorEquals: TRANSIENT_ERRORS,
        IntervalSeconds: 2,
        BackoffRate: 2,
        MaxAttempts: 5,
        MaxDelaySeconds: 60,
        JitterStrategy: 'FULL',
      });
      if (stateName === 'RecordFailure') {
        expect(state.Catch, stateName).toBeUndefined();
        expect(states[state.Next as string]?.Type).toBe('Fail');
      } else if (stateName === 'ReleaseInfrastructureSlotAfterFailure') {
        // On the way to RecordFailure already: its own failure must not replace the error being recorded.
        expect(state.Catch, stateName).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: null, Next: 'RecordFailure' }]);
        expect(state.Next).toBe('RecordFailure');
      } else if (SLOT_HOLDING_STATES.includes(stateName)) {
        // A state that may hold an infrastructure slot gives it back before the failure is recorded.
        expect(state.Catch, stateName).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'ReleaseInfrastructureSlotAfterFailure' }]);
      } else {
        expect(state.Catch, stateName).toEqual([{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordFailure' }]);
      }
    }
  });
});
