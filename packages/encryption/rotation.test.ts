import { describe, expect, it } from 'vitest';
import { type RotationAction, type RotationResult, type RotationState, RotationResultMismatch, applyResult, nextAction, nextKeyId, startRotation } from './rotation.ts';

const MACHINES = ['cp-a', 'cp-b', 'cp-c'];
const AT = '2026-11-23T12:00:00.000Z';

function resultFor(action: RotationAction, pagesLeft: { count: number }): RotationResult {
  switch (action.type) {
    case 'generate-key':
    case 'write-config':
      return { type: action.type };
    case 'restart':
      return { type: 'restart', healthy: true };
    case 'rewrite-secrets':
      pagesLeft.count--;
      return { type: 'rewrite-secrets', continueToken: pagesLeft.count > 0 ? `page-${pagesLeft.count}` : undefined, rewritten: 2 };
    case 'advance-phase':
      return { type: 'advance-phase', at: AT };
    case 'done':
      throw new Error('nothing to apply after done');
  }
}

/** Runs a rotation to the end, recording the actions taken in each phase. */
function runToEnd(state: RotationState, pages: number): { state: RotationState; actionsByPhase: Record<string, RotationAction[]> } {
  const pagesLeft = { count: pages };
  const actionsByPhase: Record<string, RotationAction[]> = {};
  for (let action = nextAction(state); action.type !== 'done'; action = nextAction(state)) {
    (actionsByPhase[state.phase] ??= []).push(action);
    state = applyResult(state, action, resultFor(action, pagesLeft));
  }
  return { state, actionsByPhase };
}

describe('key rotation state machine', () => {
  it('names the next key after the current one and refuses ids it cannot count from', () => {
    expect(nextKeyId('key-1')).toBe('key-2');
    expect(nextKeyId('key-41')).toBe('key-42');
    expect(() => nextKeyId('primary')).toThrow(/key-<n>/);
  });

  it('follows the upstream order on three control planes: new key second, then first, rewrite, drop the old key', () => {
    const start = startRotation({ machines: MACHINES, currentKey: 'key-1', now: new Date(AT) });
    const { state, actionsByPhase } = runToEnd(start, 3);

    const preparing = actionsByPhase.Preparing ?? [];
    expect(preparing[0]).toEqual({ type: 'generate-key', keyId: 'key-2' });
    expect(preparing.slice(1, 7)).toEqual([
      { type: 'write-config', machine: 'cp-a', configVersion: 1, keys: ['key-1', 'key-2'] },
      { type: 'restart', machine: 'cp-a', configVersion: 1 },
      { type: 'write-config', machine: 'cp-b', configVersion: 1, keys: ['key-1', 'key-2'] },
      { type: 'restart', machine: 'cp-b', configVersion: 1 },
      { type: 'write-config', machine: 'cp-c', configVersion: 1, keys: ['key-1', 'key-2'] },
      { type: 'restart', machine: 'cp-c', configVersion: 1 },
    ]);
    expect(preparing.slice(7, 13).filter((action) => action.type === 'write-config')).toEqual(
      MACHINES.map((machine) => ({ type: 'write-config', machine, configVersion: 2, keys: ['key-2', 'key-1'] })),
    );
    expect(preparing.slice(13, 16)).toEqual([
      { type: 'rewrite-secrets', continueToken: undefined },
      { type: 'rewrite-secrets', continueToken: 'page-2' },
      { type: 'rewrite-secrets', continueToken: 'page-1' },
    ]);
    expect(preparing.at(-1)).toEqual({ type: 'advance-phase', from: 'Preparing', to: 'Prepared' });
    expect(preparing).toHaveLength(1 + 6 + 6 + 3 + 1);
    expect(actionsByPhase.Prepared).toEqual([{ type: 'advance-phase', from: 'Prepared', to: 'Completing' }]);
    expect(actionsByPhase.Completing).toHaveLength(6 + 1);
    expect(actionsByPhase.Completing?.[0]).toEqual({ type: 'write-config', machine: 'cp-a', configVersion: 3, keys: ['key-2'] });

    expect(state.phase).toBe('Completed');
    expect(Object.keys(state.phaseEnteredAt)).toEqual(['Preparing', 'Prepared', 'Completing', 'Completed']);
    expect(state.rewrite).toEqual({ continueToken: undefined, rewritten: 6, done: true });
    expect(JSON.stringify(state)).not.toMatch(/secret|material/i);
  });

  it('restarts a machine again, and goes no further, while its API server comes back unhealthy', () => {
    let state = startRotation({ machines: MACHINES, currentKey: 'key-1', now: new Date(AT) });
    state = applyResult(state, nextAction(state), { type: 'generate-key' });
    state = applyResult(state, nextAction(state), { type: 'write-config' });
    const restart = nextAction(state);
    state = applyResult(state, restart, { type: 'restart', healthy: false });
    state = applyResult(state, restart, { type: 'restart', healthy: false });
    expect(nextAction(state)).toEqual(restart);
    expect(state.configs['cp-a']?.failedRestarts).toBe(2);
    state = applyResult(state, restart, { type: 'restart', healthy: true });
    expect(nextAction(state)).toMatchObject({ type: 'write-config', machine: 'cp-b' });
  });

  it('refuses a stale result for an action that is no longer next', () => {
    let state = startRotation({ machines: MACHINES, currentKey: 'key-1', now: new Date(AT) });
    const generate = nextAction(state);
    state = applyResult(state, generate, { type: 'generate-key' });
    expect(() => applyResult(state, generate, { type: 'generate-key' })).toThrow(RotationResultMismatch);
    expect(() => applyResult(state, nextAction(state), { type: 'restart', healthy: true })).toThrow(RotationResultMismatch);
  });

  it('rejects machine lists a rolling restart cannot work through', () => {
    expect(() => startRotation({ machines: [], currentKey: 'key-1', now: new Date(AT) })).toThrow();
    expect(() => startRotation({ machines: ['cp-a', 'cp-a'], currentKey: 'key-1', now: new Date(AT) })).toThrow();
  });
});
