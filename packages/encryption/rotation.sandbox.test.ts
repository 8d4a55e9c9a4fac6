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
const PAGE_SIZE = 3;

/**
 * The sandbox is one API server over one store, so it stands in for whichever control plane restarted last: each
 * restart loads that machine's config into it. The model test covers what several servers at once may see.
 */
class SandboxControlPlane {
  /** Key material by id; in production it stays sealed and only the machine sees it. */
  readonly material = new Map<string, string>();
  readonly disk = new Map<string, object>();
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

  render(keyIds: readonly string[]): object {
    return encryptionConfiguration(
      this.spec,
      keyIds.map((name) => ({ name, secret: this.material.get(name) ?? '' })),
    );
  }

  async execute(action: RotationAction): Promise<RotationResult> {
    switch (action.type) {
      case 'generate-key':
        if (!this.material.has(action.keyId)) this.material.set(action.keyId, randomBytes(32).toString('base64'));
        return { type: 'generate-key' };
      case 'write-config':
        this.disk.set(action.machine, this.render(action.keys));
        return { type: 'write-config' };
      case 'restart': {
        this.cluster.setEncryptionConfiguration(asLoaded(this.disk.get(action.machine)));
        const ready = await fetch(`${this.cluster.url}/readyz`);
        return { type: 'restart', healthy: ready.ok };
      }
      case 'rewrite-secrets':
        return { type: 'rewrite-secrets', ...(await rewriteSecretsPage(this.core, action.continueToken, PAGE_SIZE)) };
      case 'advance-phase':
        return { type: 'advance-phase', at: new Date().toISOString() };
      case 'done':
        throw new Error('nothing to execute after done');
    }
  }
}

/** The config as kube-apiserver reads it from disk: plain JSON data. */
function asLoaded(config: object | undefined): KubeObject {
  if (config === undefined) throw new Error('no EncryptionConfiguration on disk');
  return JSON.parse(JSON.stringify(config)) as KubeObject;
}

function clientFor(cluster: SandboxCluster): CoreV1Api {
  const config = new KubeConfig();
  config.loadFromString(cluster.kubeconfig());
  return config.makeApiClient(CoreV1Api);
}

let cluster: SandboxCluster;

beforeEach(async () => {
  cluster = await startSandboxCluster({ name: 'rotate' });
});

afterEach(async () => {
  await cluster.close();
});

describe('key rotation driven through the sandbox API server', () => {
  it('leaves every Secret readable and under the new key, with the old key gone from every config', async () => {
    const core = clientFor(cluster);
    const plane = new SandboxControlPlane(cluster, core);
    plane.material.set('key-1', randomBytes(32).toString('base64'));
    for (const machine of MACHINES) plane.disk.set(machine, plane.render(['key-1']));
    cluster.setEncryptionConfiguration(asLoaded(plane.disk.get('cp-a')));

    for (const name of NAMESPACES.slice(1)) await core.createNamespace({ body: Object.assign(new V1Namespace(), { metadata: { name } }) });
    const expected = new Map<string, string>();
    for (const namespace of NAMESPACES) {
      for (let index = 0; index < 4; index++) {
        const name = `app-${index}`;
        const token = randomBytes(8).toString('hex');
        expected.set(`${namespace}/${name}`, token);
        await core.createNamespacedSecret({ namespace, body: Object.assign(new V1Secret(), { metadata: { name, namespace }, stringData: { token } }) });
      }
    }
    expect(new Set(cluster.storedSecretKeys().map(({ key }) => key))).toEqual(new Set(['key-1']));

    let state: RotationState = startRotation({ machines: MACHINES, currentKey: 'key-1', now: new Date() });
    let crashedOnce = false;
    for (let action = nextAction(state), budget = 200; action.type !== 'done'; action = nextAction(state), budget--) {
      if (budget === 0) throw new Error('the rotation did not finish');
      const result = await plane.execute(action);
      // Lose the first rewrite page's result, as a crash before persisting would: the page is read and replaced again.
      if (action.type === 'rewrite-secrets' && action.continueToken !== undefined && !crashedOnce) {
        crashedOnce = true;
        continue;
      }
      state = applyResult(state, action, result);
    }

    expect(crashedOnce).toBe(true);
    expect(state.phase).toBe('Completed');
    expect(state.rewrite.rewritten).toBeGreaterThanOrEqual(expected.size);
    const stored = cluster.storedSecretKeys();
    expect(stored).toHaveLength(expected.size);
    for (const entry of stored) expect(entry).toMatchObject({ provider: 'aescbc', key: 'key-2' });
    for (const machine of MACHINES) {
      const config = JSON.stringify(plane.disk.get(machine));
      expect(config).toContain('key-2');
      expect(config).not.toContain('key-1');
    }
    // The server now runs a config without key-1, and still reads every Secret.
    for (const [path, token] of expected) {
      const [namespace = '', name = ''] = path.split('/');
      const secret = await core.readNamespacedSecret({ namespace, name });
      expect(Buffer.from(secret.data?.token ?? '', 'base64').toString()).toBe(token);
    }
  });
});
