/**
 * The upstream "Rotating a decryption key" procedure for Secrets encrypted at rest, as a pure state machine the
 * workflow drives one action at a time. Only key ids (`key-<n>`) live in the state; the material stays sealed with
 * the caller, who looks it up by id when it renders a control plane's EncryptionConfiguration.
 *
 * Every action is safe to execute twice, so a crash between executing an action and persisting its result is
 * recovered by calling nextAction on the persisted state again.
 */

export const ROTATION_PHASES = ['Preparing', 'Prepared', 'Completing', 'Completed'] as const;
export type RotationPhase = (typeof ROTATION_PHASES)[number];

/**
 * The EncryptionConfigurations the procedure moves each control plane through, in order. Each is safe to load at
 * any moment once every API server runs the one before it, which is what lets a machine reboot on its own mid-way.
 */
export const CONFIG_VERSIONS = {
  /** The starting point: the old key encrypts and decrypts. */
  current: 0,
  /** The new key is known to every server (second, decrypt only) before any server writes with it. */
  newKeySecond: 1,
  /** The new key encrypts; the old one still decrypts Secrets not yet rewritten. */
  newKeyFirst: 2,
  /** Every Secret has been rewritten, so the old key can go. */
  oldKeyDropped: 3,
} as const;
export type ConfigVersion = (typeof CONFIG_VERSIONS)[keyof typeof CONFIG_VERSIONS];

export interface MachineRotationState {
  /** The config version last written to the machine's disk. */
  written: ConfigVersion;
  /** The config version its API server last came up healthy with. */
  loaded: ConfigVersion;
  /** Restarts of this machine that did not come back healthy, so the workflow can decide when to give up. */
  failedRestarts: number;
}

export interface SecretRewriteProgress {
  /** Where the next page of Secrets starts; undefined means from the beginning (or, once done, nothing left). */
  continueToken: string | undefined;
  /** Secrets rewritten so far; a page re-run after a crash is counted twice. */
  rewritten: number;
  done: boolean;
}

export interface RotationState {
  phase: RotationPhase;
  /** Control plane machines, restarted one at a time in this order. */
  machines: readonly string[];
  /** The key every Secret is under when the rotation starts. */
  oldKey: string;
  newKey: string;
  /** Whether the caller has generated (and sealed) material for newKey. */
  newKeyGenerated: boolean;
  configs: Readonly<Record<string, MachineRotationState>>;
  rewrite: SecretRewriteProgress;
  /** When each phase was entered, as ISO timestamps. */
  phaseEnteredAt: Partial<Record<RotationPhase, string>>;
}

export type RotationAction =
  /** Generate material for keyId and seal it; keep existing material if keyId already has some (a re-run). */
  | { type: 'generate-key'; keyId: string }
  /** Write the EncryptionConfiguration with these keys (first encrypts) and identity last to the machine. */
  | { type: 'write-config'; machine: string; configVersion: ConfigVersion; keys: readonly string[] }
  /** Restart the machine's API server and report whether it came back healthy. */
  | { type: 'restart'; machine: string; configVersion: ConfigVersion }
  /** Read and replace one page of Secrets, starting at continueToken (undefined: from the start). */
  | { type: 'rewrite-secrets'; continueToken: string | undefined }
  | { type: 'advance-phase'; from: RotationPhase; to: RotationPhase }
  | { type: 'done' };

export type RotationResult =
  | { type: 'generate-key' }
  | { type: 'write-config' }
  | { type: 'restart'; healthy: boolean }
  /** continueToken undefined: that was the last page. */
  | { type: 'rewrite-secrets'; continueToken: string | undefined; rewritten: number }
  | { type: 'advance-phase'; at: string };

/** A result that does not belong to the action nextAction would return now: stale, or from another rotation. */
export class RotationResultMismatch extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RotationResultMismatch';
  }
}

const KEY_ID = /^key-(\d+)$/;

/** The id of the key after `keyId`: key-3 follows key-2. */
export function nextKeyId(keyId: string): string {
  const match = KEY_ID.exec(keyId);
  if (match?.[1] === undefined) throw new Error(`encryption key ids look like key-<n>, got ${keyId}`);
  return `key-${Number(match[1]) + 1}`;
}

export interface StartRotationInput {
  machines: readonly string[];
  /** The id of the key currently first in every control plane's EncryptionConfiguration. */
  currentKey: string;
  now: Date;
}

export function startRotation({ machines, currentKey, now }: StartRotationInput): RotationState {
  if (machines.length === 0) throw new Error('a rotation needs at least one control plane machine');
  if (new Set(machines).size !== machines.length) throw new Error('control plane machines must be distinct');
  const configs: Record<string, MachineRotationState> = {};
  for (const machine of machines) configs[machine] = { written: CONFIG_VERSIONS.current, loaded: CONFIG_VERSIONS.current, failedRestarts: 0 };
  return {
    phase: 'Preparing',
    machines: [...machines],
    oldKey: currentKey,
    newKey: nextKeyId(currentKey),
    newKeyGenerated: false,
    configs,
    rewrite: { continueToken: undefined, rewritten: 0, done: false },
    phaseEnteredAt: { Preparing: now.toISOString() },
  };
}

/** The key ids, first (encrypting) key first, a control plane's config lists at a version. */
export function keysAt(state: Pick<RotationState, 'oldKey' | 'newKey'>, version: ConfigVersion): string[] {
  switch (version) {
    case CONFIG_VERSIONS.current:
      return [state.oldKey];
    case CONFIG_VERSIONS.newKeySecond:
      return [state.oldKey, state.newKey];
    case CONFIG_VERSIONS.newKeyFirst:
      return [state.newKey, state.oldKey];
    case CONFIG_VERSIONS.oldKeyDropped:
      return [state.newKey];
  }
}

function machineState(state: RotationState, machine: string): MachineRotationState {
  const config = state.configs[machine];
  if (config === undefined) throw new Error(`${machine} is not a control plane machine of this rotation`);
  return config;
}

/**
 * Moves the machines to a config version one at a time: write, restart, and only then the next machine, so at
 * most one API server is down and a bad config stops the roll at the first machine.
 */
function rollTo(state: RotationState, version: ConfigVersion): RotationAction | undefined {
  for (const machine of state.machines) {
    const config = machineState(state, machine);
    if (config.written < version) return { type: 'write-config', machine, configVersion: version, keys: keysAt(state, version) };
    if (config.loaded < version) return { type: 'restart', machine, configVersion: version };
  }
  return undefined;
}

function advance(state: RotationState): RotationAction {
  const index = ROTATION_PHASES.indexOf(state.phase);
  const to = ROTATION_PHASES[index + 1];
  if (to === undefined) return { type: 'done' };
  return { type: 'advance-phase', from: state.phase, to };
}

/**
 * The one thing to do next. Preparing generates the key, makes every server able to decrypt with it, then makes it
 * the encrypting key and rewrites every Secret; Prepared means every Secret is under the new key while the old one
 * still decrypts; Completing drops the old key from every server.
 */
export function nextAction(state: RotationState): RotationAction {
  switch (state.phase) {
    case 'Preparing': {
      if (!state.newKeyGenerated) return { type: 'generate-key', keyId: state.newKey };
      const roll = rollTo(state, CONFIG_VERSIONS.newKeySecond) ?? rollTo(state, CONFIG_VERSIONS.newKeyFirst);
      if (roll !== undefined) return roll;
      if (!state.rewrite.done) return { type: 'rewrite-secrets', continueToken: state.rewrite.continueToken };
      return advance(state);
    }
    case 'Prepared':
      return advance(state);
    case 'Completing':
      return rollTo(state, CONFIG_VERSIONS.oldKeyDropped) ?? advance(state);
    case 'Completed':
      return { type: 'done' };
  }
}

function sameAction(a: RotationAction, b: RotationAction): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function withMachine(state: RotationState, machine: string, change: Partial<MachineRotationState>): RotationState {
  return { ...state, configs: { ...state.configs, [machine]: { ...machineState(state, machine), ...change } } };
}

/**
 * The state after an action ran. Refuses an action that is not the one nextAction returns for this state, so a
 * late result from before a crash cannot move the rotation past a step that was never checked.
 */
export function applyResult(state: RotationState, action: RotationAction, result: RotationResult): RotationState {
  const expected = nextAction(state);
  if (!sameAction(action, expected)) {
    throw new RotationResultMismatch(`expected a result for ${JSON.stringify(expected)}, got one for ${JSON.stringify(action)}`);
  }
  if (action.type === 'done' || result.type !== action.type) {
    throw new RotationResultMismatch(`a ${result.type} result does not answer a ${action.type} action`);
  }
  switch (result.type) {
    case 'generate-key':
      return { ...state, newKeyGenerated: true };
    case 'write-config': {
      if (action.type !== 'write-config') break;
      return withMachine(state, action.machine, { written: action.configVersion });
    }
    case 'restart': {
      if (action.type !== 'restart') break;
      const config = machineState(state, action.machine);
      return result.healthy
        ? withMachine(state, action.machine, { loaded: action.configVersion, failedRestarts: 0 })
        : withMachine(state, action.machine, { failedRestarts: config.failedRestarts + 1 });
    }
    case 'rewrite-secrets':
      return {
        ...state,
        rewrite: {
          continueToken: result.continueToken,
          rewritten: state.rewrite.rewritten + result.rewritten,
          done: result.continueToken === undefined,
        },
      };
    case 'advance-phase': {
      if (action.type !== 'advance-phase') break;
      return { ...state, phase: action.to, phaseEnteredAt: { ...state.phaseEnteredAt, [action.to]: result.at } };
    }
  }
  throw new RotationResultMismatch(`a ${result.type} result does not answer a ${action.type} action`);
}
