import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeadmDefaults } from './kubeadm-defaults.ts';
import { RenderedConfigError, buildMachines } from './machine.ts';

const flagsOf = (list: readonly [string, string][] | undefined) => new Map(list ?? []);

describe("kubeadm's defaults by release", () => {
  it('runs etcd 3.5 with its experimental flags up to 1.33', () => {
    const etcd = flagsOf(kubeadmDefaults('v1.33.13')?.etcdFlags);
    expect(etcd.get('--experimental-initial-corrupt-check')).toBe('true');
    expect(etcd.has('--feature-gates')).toBe(false);
    expect(flagsOf(kubeadmDefaults('1.33')?.kubeletFlags).get('--container-runtime-endpoint')).toBe('unix:///var/run/containerd/containerd.sock');
  });

  it.each(['v1.34.11', 'v1.35.9', 'v1.36.4', 'v1.37.1'])('runs etcd 3.6 with feature gates and a node-local CRI socket from 1.34 (%s)', (version) => {
    const defaults = kubeadmDefaults(version);
    const etcd = flagsOf(defaults?.etcdFlags);
    expect(etcd.get('--feature-gates')).toBe('InitialCorruptCheck=true');
    expect(etcd.get('--watch-progress-notify-interval')).toBe('5s');
    expect([...etcd.keys()].filter((flag) => flag.startsWith('--experimental-'))).toEqual([]);
    expect(flagsOf(defaults?.kubeletFlags).has('--container-runtime-endpoint')).toBe(false);
  });

  it('models no release whose notes nobody has read', () => {
    expect(kubeadmDefaults('v1.38.0')).toBeUndefined();
    expect(kubeadmDefaults('v1.31.14')).toBeUndefined();
    expect(kubeadmDefaults('latest')).toBeUndefined();
  });

  it('refuses to score machines of a release it does not model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-unmodelled-'));
    await cp(join(import.meta.dirname, 'testdata/hardened'), dir, { recursive: true });
    const init = join(dir, 'kubeadm/init-configuration.yaml');
    await writeFile(init, (await readFile(init, 'utf8')).replace(/kubernetesVersion: v1\.33\.4/, 'kubernetesVersion: v1.38.0'));
    await expect(buildMachines(dir)).rejects.toThrow(RenderedConfigError);
    await expect(buildMachines(dir)).rejects.toThrow(/modelled for Kubernetes 1\.32 to 1\.37, not 'v1\.38\.0'/);
  });
});
