import { randomBytes } from 'node:crypto';
import { CoreV1Api, KubeConfig, V1Namespace, V1Secret } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encryptionConfiguration } from '#bootstrap';
import { ClusterSpec } from '#core';
import { type KubeObject, type SandboxCluster, startSandboxCluster } from '#sandbox';
import { rewriteSecretsPage } from './rewrite-secrets.ts';
import { type RotationAction, type RotationResult, type RotationState, applyResult, nextAction, startRotation } from './rotation.ts';

const MACHINES = ['cp-a', 'cp-b', 'cp-c'];
const NAMESPACES = ['default', 'team-a', 'team-b'];
const SECRETS_PER_NAMESPACE = 4;
const PAGE_SIZE = 3;
/** 12 Secrets, 3 a page: the rewrite takes exactly this many pages (the last one hands back no continue token). */
const PAGES = (NAMESPACES.length * SECRETS_PER_NAMESPACE) / PAGE_SIZE;
const OLD_KEY = 'key-1';
const NEW_KEY = 'key-2';

type ExecutableAction = Exclude<RotationAction, { type: 'done' }>;

/** How the process running action `at` dies; either way nothing about that action is persisted. */
type CrashMode = 'fails before taking effect' | 'takes effect but its result is lost';
interface Crash {
  at: number;
  mode: CrashMode;
}

class InjectedCrash extends Error {
  constructor(readonly index: number) {
    super(`injected crash before action #${index}`);
    this.name = 'InjectedCrash';
  }
}

/**
 * The sandbox is one API server over one store, so it stands in for whichever control plane restarted last: each
 * restart loads that machine's config into it. The model test covers what several servers at once may see.
 */
class SandboxControlPlane {
  /** Key material by id; in production it stays sealed and only the machine sees it. */
  readonly material = new Map<string, string>();
  /** The EncryptionConfiguration on each machine's disk, with the key ids it lists. */
  readonly disk = new Map<string, { keys: readonly string[]; config: object }>();
  /** The key ids of the config the API server runs now. */
  loadedKeys: readonly string[] = [];
  private readonly spec = ClusterSpec.parse({
    name: 'rotate',
    region: 'eu-central-1',
    nodePools: [{ name: 'default', size: 1 }],
    encryption: { atRest: { provider: 'aescbc' } },
  });

  constructor(
    private readonly cluster: SandboxCluster,
    private readonly core: CoreV1Api,
  ) {}

  write(machine: string, keys: readonly string[]): void {
    const config = encryptionConfiguration(
      this.spec,
      keys.map((name) => ({ name, secret: this.material.get(name) ?? '' })),
    );
    this.disk.set(machine, { keys: [...keys], config });
  }

  /** What kube-apiserver does on start: read the config from disk (plain JSON data) and load it. */
  load(machine: string): void {
    const written = this.disk.get(machine);
    if (written === undefined) throw new Error(`no EncryptionConfiguration on ${machine}'s disk`);
    this.cluster.setEncryptionConfiguration(JSON.parse(JSON.stringify(written.config)) as KubeObject);
    this.loadedKeys = written.keys;
  }

  async execute(action: ExecutableAction): Promise<RotationResult> {
    switch (action.type) {
      case 'generate-key':
        if (!this.material.has(action.keyId)) this.material.set(action.keyId, randomBytes(32).toString('base64'));
        return { type: 'generate-key' };
      case 'write-config':
        this.write(action.machine, action.keys);
        return { type: 'write-config' };
      case 'restart': {
        this.load(action.machine);
        const ready = await fetch(`${this.cluster.url}/readyz`);
        return { type: 'restart', healthy: ready.ok };
      }
      case 'rewrite-secrets':
        return { type: 'rewrite-secrets', ...(await rewriteSecretsPage(this.core, action.continueToken, PAGE_SIZE)) };
      case 'advance-phase':
        return { type: 'advance-phase', at: new Date().toISOString() };
    }
  }
}

/** An action as a failure message names it; a rewrite by its page number rather than its opaque continue token. */
function describeAction(action: ExecutableAction, page: number): string {
  switch (action.type) {
    case 'generate-key':
      return `generate-key ${action.keyId}`;
    case 'write-config':
      return `write-config ${action.machine} v${action.configVersion} [${action.keys.join(',')}]`;
    case 'restart':
      return `restart ${action.machine} v${action.configVersion}`;
    case 'rewrite-secrets':
      return `rewrite-secrets page ${page}`;
    case 'advance-phase':
      return `advance-phase ${action.from}->${action.to}`;
  }
}

/** Numbers the rewrite pages by the continue token they start at, as results hand the tokens out. */
class PageNumbers {
  private readonly byToken = new Map<string | undefined, number>([[undefined, 1]]);

  of(action: ExecutableAction): number {
    return action.type === 'rewrite-secrets' ? (this.byToken.get(action.continueToken) ?? 0) : 0;
  }

  record(action: ExecutableAction, result: RotationResult): void {
    if (action.type !== 'rewrite-secrets' || result.type !== 'rewrite-secrets' || result.continueToken === undefined) return;
    if (!this.byToken.has(result.continueToken)) this.byToken.set(result.continueToken, this.of(action) + 1);
  }
}

function start(): RotationState {
  return startRotation({ machines: MACHINES, currentKey: OLD_KEY, now: new Date() });
}

/** The actions of a rotation without crashes, from the pure state machine alone, so each can name a test case. */
function plannedActions(): string[] {
  const planned: string[] = [];
  const pages = new PageNumbers();
  let state = start();
  for (let action = nextAction(state); action.type !== 'done'; action = nextAction(state)) {
    const page = pages.of(action);
    planned.push(describeAction(action, page));
    const result: RotationResult =
      action.type === 'restart'
        ? { type: 'restart', healthy: true }
        : action.type === 'rewrite-secrets'
          ? { type: 'rewrite-secrets', continueToken: page < PAGES ? `after-page-${page}` : undefined, rewritten: PAGE_SIZE }
          : action.type === 'advance-phase'
            ? { type: 'advance-phase', at: new Date().toISOString() }
            : { type: action.type };
    pages.record(action, result);
    state = applyResult(state, action, result);
  }
  return planned;
}

const PLAN = plannedActions();
const CRASH_MODES: CrashMode[] = ['fails before taking effect', 'takes effect but its result is lost'];
const CRASHES = CRASH_MODES.flatMap((mode) => PLAN.map((label, at) => ({ at, mode, label })));

function clientFor(cluster: SandboxCluster): CoreV1Api {
  const config = new KubeConfig();
  config.loadFromString(cluster.kubeconfig());
  return config.makeApiClient(CoreV1Api);
}

let cluster: SandboxCluster;
let core: CoreV1Api;
let plane: SandboxControlPlane;
/** Every Secret's value by `namespace/name`. */
let expected: Map<string, string>;

beforeEach(async () => {
  cluster = await startSandboxCluster({ name: 'rotate' });
  core = clientFor(cluster);
  plane = new SandboxControlPlane(cluster, core);
  plane.material.set(OLD_KEY, randomBytes(32).toString('base64'));
  for (const machine of MACHINES) plane.write(machine, [OLD_KEY]);
  plane.load(MACHINES[0] ?? '');

  for (const name of NAMESPACES.slice(1)) await core.createNamespace({ body: Object.assign(new V1Namespace(), { metadata: { name } }) });
  expected = new Map();
  for (const namespace of NAMESPACES) {
    for (let index = 0; index < SECRETS_PER_NAMESPACE; index++) {
      const name = `app-${index}`;
      const token = randomBytes(8).toString('hex');
      expected.set(`${namespace}/${name}`, token);
      await core.createNamespacedSecret({ namespace, body: Object.assign(new V1Secret(), { metadata: { name, namespace }, stringData: { token } }) });
    }
  }
  expect(new Set(cluster.storedSecretKeys().map(({ key }) => key))).toEqual(new Set([OLD_KEY]));
});

afterEach(async () => {
  await cluster.close();
});

/**
 * After every action: the API server, and every machine's disk (what it would load if it rebooted on its own),
 * lists every key a stored Secret is under, so no Secret is unreadable at any moment.
 */
function expectEverySecretDecryptable(moment: string): void {
  const needed = [...new Set(cluster.storedSecretKeys().map(({ key }) => key))].filter((key) => key !== 'identity').sort();
  const missing = (keys: readonly string[]) => needed.filter((key) => !keys.includes(key));
  expect(missing(plane.loadedKeys), `${moment}: the API server runs [${plane.loadedKeys.join(',')}], Secrets are under [${needed.join(',')}]`).toEqual([]);
  for (const [machine, { keys }] of plane.disk) {
    expect(missing(keys), `${moment}: ${machine}'s disk lists [${keys.join(',')}], Secrets are under [${needed.join(',')}]`).toEqual([]);
  }
}

/**
 * Drives the rotation as the workflow does, persisting the state after every action; a crash loses that action's
 * result, and the loop resumes from the persisted state as a new invocation would. Returns what ran, in order.
 */
async function rotate(crash?: Crash): Promise<{ state: RotationState; executed: string[] }> {
  let persisted = start();
  const executed: string[] = [];
  const pages = new PageNumbers();
  for (let action = nextAction(persisted); action.type !== 'done'; action = nextAction(persisted)) {
    if (executed.length > 2 * PLAN.length) throw new Error(`the rotation did not finish: ${executed.join('; ')}`);
    const index = executed.length;
    const label = describeAction(action, pages.of(action));
    executed.push(label);
    const crashes = crash?.at === index;
    const moment = `after action #${index} (${label})${crashes ? `, which ${crash.mode}` : ''}`;
    try {
      if (crashes && crash.mode === 'fails before taking effect') throw new InjectedCrash(index);
      const result = await plane.execute(action);
      expectEverySecretDecryptable(moment);
      pages.record(action, result);
      if (crashes) continue;
      persisted = applyResult(persisted, action, result);
    } catch (error) {
      if (!(error instanceof InjectedCrash)) throw error;
      expectEverySecretDecryptable(moment);
    }
  }
  return { state: persisted, executed };
}

async function expectRotated(state: RotationState, moment: string): Promise<void> {
  expect(state.phase, moment).toBe('Completed');
  expect(state.rewrite.rewritten, moment).toBeGreaterThanOrEqual(expected.size);
  const stored = cluster.storedSecretKeys();
  expect(stored, moment).toHaveLength(expected.size);
  for (const entry of stored) expect(entry, `${moment}: ${entry.namespace}/${entry.name}`).toMatchObject({ provider: 'aescbc', key: NEW_KEY });
  for (const machine of MACHINES) {
    const config = JSON.stringify(plane.disk.get(machine)?.config);
    expect(config, `${moment}: ${machine}'s config`).toContain(NEW_KEY);
    expect(config, `${moment}: ${machine}'s config`).not.toContain(OLD_KEY);
  }
  // The server now runs a config without the old key, and still reads every Secret.
  expect(plane.loadedKeys, moment).toEqual([NEW_KEY]);
  for (const [path, token] of expected) {
    const [namespace = '', name = ''] = path.split('/');
    const secret = await core.readNamespacedSecret({ namespace, name });
    expect(Buffer.from(secret.data?.token ?? '', 'base64').toString(), `${moment}: ${path}`).toBe(token);
  }
}

describe('key rotation driven through the sandbox API server', () => {
  it('runs the planned actions and leaves every Secret readable and under the new key, with the old key gone from every config', async () => {
    const { state, executed } = await rotate();
    expect(executed).toEqual(PLAN);
    expect(executed.filter((label) => label.startsWith('rewrite-secrets'))).toHaveLength(PAGES);
    await expectRotated(state, 'without a crash');
  });

  it.each(CRASHES)('completes when action #$at ($label) $mode', async ({ at, mode, label }) => {
    const moment = `crash at action #${at} (${label}), which ${mode}`;
    const { state, executed } = await rotate({ at, mode });
    // The crash hit the action the case names, and the resumed rotation ran that action again, then went on as planned.
    expect(executed, moment).toEqual([...PLAN.slice(0, at + 1), ...PLAN.slice(at)]);
    await expectRotated(state, moment);
  });
});
