import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type RotationAction, type RotationResult, type RotationState, applyResult, nextAction, startRotation } from './rotation.ts';

/**
 * A model of a control plane during rotation: each machine's config on disk, the keys its API server loaded when it
 * last started, and which key each stored Secret is under. The orchestrator only keeps the persisted RotationState,
 * so a crash loses the result of an action that already ran and the action runs again on resume.
 */
const MACHINES = ['cp-a', 'cp-b', 'cp-c'];
const PAGE_SIZE = 2;
const SECRET_NAMES = 8;

class SafetyViolation extends Error {}

interface World {
  disk: Record<string, string[]>;
  loaded: Record<string, string[]>;
  /** Secret name to the key it is stored under. */
  secrets: Map<string, string>;
  persisted: RotationState;
}

type Event =
  /** The orchestrator runs the next action; with crash, it dies before persisting the result. */
  | { kind: 'step'; crash: boolean; healthy: boolean; server: number }
  /** An API server restarts on its own (machine reboot), loading whatever config is on disk. */
  | { kind: 'reboot'; machine: number }
  /** A client writes a Secret through one API server (behind a load balancer, any of them). */
  | { kind: 'write'; server: number; secret: number };

/** How the executor may deviate from the action it was given, to show the property catches a wrong order. */
type Misexecution = (action: RotationAction, state: RotationState) => RotationAction;

const faithful: Misexecution = (action) => action;

function machineAt(index: number): string {
  return MACHINES[index % MACHINES.length] ?? 'cp-a';
}

function loadedKeys(world: World, machine: string): string[] {
  return world.loaded[machine] ?? [];
}

function read(world: World, machine: string, name: string): void {
  const key = world.secrets.get(name);
  if (key !== undefined && !loadedKeys(world, machine).includes(key)) {
    throw new SafetyViolation(`${machine} cannot read ${name}: it lacks ${key}`);
  }
}

function write(world: World, machine: string, name: string): void {
  const key = loadedKeys(world, machine)[0];
  if (key === undefined) throw new SafetyViolation(`${machine} has no key to write with`);
  world.secrets.set(name, key);
}

/** At every moment: each server can read every stored Secret, and whatever any server writes every other can read. */
function checkSafety(world: World): void {
  for (const machine of MACHINES) {
    for (const [name] of world.secrets) read(world, machine, name);
    const writeKey = loadedKeys(world, machine)[0];
    for (const other of MACHINES) {
      if (writeKey !== undefined && !loadedKeys(world, other).includes(writeKey)) {
        throw new SafetyViolation(`${other} could not read what ${machine} writes with ${writeKey}`);
      }
    }
  }
}

function execute(world: World, action: RotationAction, event: { healthy: boolean; server: number }): RotationResult {
  switch (action.type) {
    case 'generate-key':
      return { type: 'generate-key' };
    case 'write-config':
      world.disk[action.machine] = [...action.keys];
      return { type: 'write-config' };
    case 'restart':
      // An unhealthy server still loaded the config on disk; only the report differs.
      world.loaded[action.machine] = [...(world.disk[action.machine] ?? [])];
      return { type: 'restart', healthy: event.healthy };
    case 'rewrite-secrets': {
      const names = [...world.secrets.keys()].sort();
      const rest = names.filter((name) => action.continueToken === undefined || name > action.continueToken);
      const page = rest.slice(0, PAGE_SIZE);
      const server = machineAt(event.server);
      for (const name of page) {
        read(world, server, name);
        write(world, server, name);
      }
      const last = page.at(-1);
      return { type: 'rewrite-secrets', continueToken: rest.length > PAGE_SIZE ? last : undefined, rewritten: page.length };
    }
    case 'advance-phase':
      return { type: 'advance-phase', at: new Date(0).toISOString() };
    case 'done':
      throw new Error('nothing to execute after done');
  }
}

function step(world: World, event: { crash: boolean; healthy: boolean; server: number }, misexecute: Misexecution): boolean {
  const action = nextAction(world.persisted);
  if (action.type === 'done') return false;
  const result = execute(world, misexecute(action, world.persisted), event);
  if (!event.crash) world.persisted = applyResult(world.persisted, action, result);
  return true;
}

function initialWorld(secretCount: number): World {
  const world: World = { disk: {}, loaded: {}, secrets: new Map(), persisted: startRotation({ machines: MACHINES, currentKey: 'key-1', now: new Date(0) }) };
  for (const machine of MACHINES) {
    world.disk[machine] = ['key-1'];
    world.loaded[machine] = ['key-1'];
  }
  for (let index = 0; index < secretCount; index++) world.secrets.set(`s-${index}`, 'key-1');
  return world;
}

const eventArbitrary: fc.Arbitrary<Event> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('step' as const), crash: fc.boolean(), healthy: fc.boolean(), server: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reboot' as const), machine: fc.nat(5) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('write' as const), server: fc.nat(5), secret: fc.nat(SECRET_NAMES - 1) }) },
);

function rotationIsSafe(misexecute: Misexecution): fc.IPropertyWithHooks<[number, Event[]]> {
  return fc.property(fc.nat(SECRET_NAMES), fc.array(eventArbitrary, { maxLength: 120 }), (secretCount, events) => {
    const world = initialWorld(secretCount);
    checkSafety(world);
    for (const event of events) {
      switch (event.kind) {
        case 'step':
          step(world, event, misexecute);
          break;
        case 'reboot': {
          const machine = machineAt(event.machine);
          world.loaded[machine] = [...(world.disk[machine] ?? [])];
          break;
        }
        case 'write':
          write(world, machineAt(event.server), `s-${event.secret}`);
          break;
      }
      checkSafety(world);
    }
    // Whatever happened so far, an orchestrator that stops crashing finishes the rotation.
    for (let budget = 1000; step(world, { crash: false, healthy: true, server: 0 }, misexecute); budget--) {
      if (budget === 0) throw new Error('the rotation did not finish');
      checkSafety(world);
    }
    expect(world.persisted.phase).toBe('Completed');
    for (const [, key] of world.secrets) expect(key).toBe('key-2');
    for (const machine of MACHINES) {
      expect(world.disk[machine]).toEqual(['key-2']);
      expect(world.loaded[machine]).toEqual(['key-2']);
    }
  });
}

/** The safety violation fast-check found (shrunk), so a test can assert the property catches a wrong procedure. */
function violationFound(property: fc.IPropertyWithHooks<[number, Event[]]>): string {
  const details = fc.check(property, { numRuns: 400 });
  if (!details.failed) return 'no counterexample found';
  return details.errorInstance instanceof SafetyViolation ? details.errorInstance.message : `not a safety violation: ${String(details.errorInstance)}`;
}

describe('key rotation safety over every interleaving of actions, crashes, reboots and client writes', () => {
  it('never leaves an API server unable to read a stored Secret, and ends with only the new key', () => {
    fc.assert(rotationIsSafe(faithful), { numRuns: 1000 });
  });

  it('catches a procedure that makes the new key first before every server knows it', () => {
    const newKeyFirstTooEarly: Misexecution = (action, state) =>
      action.type === 'write-config' && action.configVersion === 1 ? { ...action, keys: [state.newKey, state.oldKey] } : action;
    expect(violationFound(rotationIsSafe(newKeyFirstTooEarly))).toMatch(/could not read what|cannot read/);
  });

  it('catches a procedure that drops the old key before the Secrets under it are rewritten', () => {
    const dropOldKeyEarly: Misexecution = (action, state) =>
      action.type === 'write-config' && action.configVersion === 2 ? { ...action, keys: [state.newKey] } : action;
    expect(violationFound(rotationIsSafe(dropOldKeyEarly))).toMatch(/could not read what|cannot read/);
  });
});
