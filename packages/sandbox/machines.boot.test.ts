import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateClusterPki, joinMaterial, machineSecretPath, pkiToPem } from '#bootstrap';
import { ClusterSpec } from '#core';
import type { BootProcedure } from './boot-procedure.ts';
import type { RecordedResource } from './cloud/index.ts';
import { bootBehaviour } from './cloud-init/validate.ts';
import { type SandboxCluster, startSandboxCluster } from './kube/index.ts';
import { waitUntil } from './kube/testing.ts';
import { machineImagesOf } from './machine-images.ts';
import { type MachineImage, SandboxMachines, groupsForOrder } from './machines.ts';
import { renderedLaunchTemplates } from './testing.ts';

const CLUSTER_ID = 'cl_boot';
const JOIN_TOKEN = 'abcdef.0123456789abcdef';
const controlPlaneOnly = ClusterSpec.parse({ name: 'boot', region: 'eu-central-1', nodePools: [{ name: 'default', size: 0 }] });
const GROUP_NAMES = { controlPlane: `${CLUSTER_ID}-cp`, pools: {} };
/** A unit as Kiln's user data would write one: restarted every 10 s, giving up 20 minutes after first boot. */
const RETRIED: BootProcedure = { runs: 'unit', unit: 'kiln-bootstrap.service', restartsOnFailure: true, restartMs: 10_000, startLimit: { intervalMs: 0, burst: 5 }, deadlineMs: 20 * 60_000 };

let cluster: SandboxCluster | undefined;
let machines: SandboxMachines | undefined;

afterEach(async () => {
  vi.useRealTimers();
  machines?.forget(CLUSTER_ID);
  machines = undefined;
  await cluster?.close();
  cluster = undefined;
});

/** Three control plane machines booted from `image` before anything is published; the parameters to publish into. */
async function bootWithoutJoinMaterial(image: MachineImage) {
  const target = await startSandboxCluster({ name: 'boot' });
  cluster = target;
  const parameters = new Map<string, string>();
  const booted = new SandboxMachines((_scope, name) => parameters.get(name), 0);
  machines = booted;
  booted.boot(CLUSTER_ID, target, controlPlaneOnly, () => true, groupsForOrder(controlPlaneOnly, { controlPlane: image }, GROUP_NAMES));
  const instances = () => booted.instancesOfCluster(CLUSTER_ID);
  await waitUntil('every machine to run its boot script once', () => instances().length === 3 && instances().every((instance) => instance.bootError !== undefined || instance.lastBootFailure !== undefined));
  const publishJoinToken = () => parameters.set(machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), JOIN_TOKEN);
  return { target, instances, publishJoinToken };
}

describe('the boot procedure of a sandbox machine', () => {
  it('never joins when cloud-init runs it once from runcmd and its join material is published after it ran', async () => {
    const { target, instances, publishJoinToken } = await bootWithoutJoinMaterial({ providerIdAtBoot: true, ssmManaged: true, bootProcedure: { runs: 'once' } });
    expect(instances().map((instance) => instance.bootError)).toEqual(Array(3).fill(expect.stringMatching(/ParameterNotFound.*join-token/)));
    publishJoinToken();
    expect(target.objects({ kind: 'Node' })).toEqual([]);
  });

  it('joins once its join material appears when a systemd unit restarts it', async () => {
    const { target, instances, publishJoinToken } = await bootWithoutJoinMaterial({ providerIdAtBoot: true, ssmManaged: true, bootProcedure: RETRIED });
    expect(instances().map((instance) => instance.lastBootFailure)).toEqual(Array(3).fill(expect.stringMatching(/ParameterNotFound.*join-token/)));
    publishJoinToken();
    await waitUntil('the machines to join', () => target.objects({ kind: 'Node' }).length === 3);
    expect(instances().map((instance) => [instance.bootError, instance.lastBootFailure])).toEqual(Array(3).fill([undefined, undefined]));
  });

  it('gives up at the deadline its script keeps, counted from first boot', async () => {
    const { instances } = await bootWithoutJoinMaterial({ providerIdAtBoot: true, ssmManaged: true, bootProcedure: RETRIED });
    expect(instances().map((instance) => instance.bootError)).toEqual([undefined, undefined, undefined]);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 21 * 60_000);
    await waitUntil('the machines to give up', () => instances().every((instance) => instance.bootError !== undefined));
    expect(instances()[0]?.bootError).toMatch(/no join within 20 minutes of first boot.*last failure: .*ParameterNotFound/);
  });

  it('survives downloads that fail at first only when a unit restarts it', async () => {
    const outcomes: (string | undefined)[][] = [];
    for (const bootProcedure of [{ runs: 'once' } as const, RETRIED]) {
      const target = await startSandboxCluster({ name: 'boot' });
      const parameters = new Map([[machineSecretPath(CLUSTER_ID, 'control-plane', 'join-token'), JOIN_TOKEN]]);
      const booted = new SandboxMachines((_scope, name) => parameters.get(name), 0);
      try {
        booted.failBootRuns(3);
        booted.boot(CLUSTER_ID, target, controlPlaneOnly, () => true, groupsForOrder(controlPlaneOnly, { controlPlane: { providerIdAtBoot: true, ssmManaged: true, bootProcedure } }, GROUP_NAMES));
        const instances = () => booted.instancesOfCluster(CLUSTER_ID);
        await waitUntil('every machine to join or give up', () => instances().length === 3 && instances().every((instance) => instance.bootError !== undefined || instance.nodeName !== undefined));
        outcomes.push(instances().map((instance) => instance.bootError));
      } finally {
        booted.forget(CLUSTER_ID);
        await target.close();
      }
    }
    expect(outcomes).toEqual([Array(3).fill(expect.stringContaining('could not connect')), [undefined, undefined, undefined]]);
  });

  it("stops restarting when the unit's runs hit systemd's start limit", async () => {
    const fast: BootProcedure = { ...RETRIED, restartMs: 100, startLimit: { intervalMs: 10_000, burst: 5 } };
    const { instances } = await bootWithoutJoinMaterial({ providerIdAtBoot: true, ssmManaged: true, bootProcedure: fast });
    await waitUntil('the machines to stop', () => instances().every((instance) => instance.bootError !== undefined));
    expect(instances()[0]?.bootError).toMatch(/start request repeated too quickly/);
  });
});

describe('how user data runs its boot script', () => {
  const script = (runcmd: string, files = '') =>
    [
      '#cloud-config',
      'write_files:',
      '  - path: /usr/local/sbin/boot',
      '    permissions: "0700"',
      '    content: |',
      '      kubeadm join --config /run/kiln/kubeadm.yaml',
      files,
      'runcmd:',
      runcmd,
      '',
    ].join('\n');
  const unit = (service: string) => ['  - path: /etc/systemd/system/boot.service', '    content: |', ...service.split('\n').map((line) => `      ${line}`)].join('\n');

  it('is once from runcmd, or a unit runcmd starts with its restart settings and systemd defaults', () => {
    expect(bootBehaviour(script('  - [/usr/local/sbin/boot]')).bootProcedure).toEqual({ runs: 'once' });
    const started = script('  - systemctl enable --now --no-block boot.service', unit('[Service]\nExecStart=/usr/local/sbin/boot\nRestart=on-failure\nRestartSec=15s'));
    expect(bootBehaviour(started).bootProcedure).toEqual({ runs: 'unit', unit: 'boot.service', restartsOnFailure: true, restartMs: 15_000, startLimit: { intervalMs: 10_000, burst: 5 } });
    const plain = script('  - systemctl start boot', unit('[Unit]\nStartLimitIntervalSec=0\n[Service]\nExecStart=-/usr/local/sbin/boot'));
    expect(bootBehaviour(plain).bootProcedure).toEqual({ runs: 'unit', unit: 'boot.service', restartsOnFailure: false, restartMs: 100, startLimit: { intervalMs: 0, burst: 5 } });
    // A unit that is written but never started runs nothing.
    expect(bootBehaviour(script('  - systemctl daemon-reload', unit('[Service]\nExecStart=/usr/local/sbin/boot\nRestart=always'))).bootProcedure).toBeUndefined();
  });
});

describe('machines booted from what Kiln renders', () => {
  const spec = ClusterSpec.parse({ name: 'late', region: 'eu-central-1', nodePools: [{ name: 'general', size: 1 }] });
  const apiHost = 'late-api.elb.eu-central-1.amazonaws.com';

  const launchTemplates = (): RecordedResource[] => renderedLaunchTemplates(CLUSTER_ID, spec, 'late');

  it('join when their join material is published after they booted, as the bootstrap step publishes it', { timeout: 30_000 }, async () => {
    const pki = pkiToPem(await generateClusterPki({ clusterName: spec.name, apiHost, serviceCidr: spec.network.serviceCidr }));
    const target = await startSandboxCluster({ name: CLUSTER_ID, secure: true });
    cluster = target;
    const parameters = new Map<string, string>();
    const booted = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    machines = booted;
    // Some first downloads fail too, as they do while the cluster's NAT gateways are still being made.
    booted.failBootRuns(2);
    booted.boot(CLUSTER_ID, target, spec, () => true, groupsForOrder(spec, machineImagesOf(launchTemplates()), { controlPlane: `${CLUSTER_ID}-cp`, pools: { general: `${CLUSTER_ID}-pool-general` } }));
    const instances = () => booted.instancesOfCluster(CLUSTER_ID);
    // The machines boot while the infrastructure step still runs: their first run finds nothing.
    await waitUntil('every machine to run its boot script', () => instances().length === 4 && instances().every((instance) => instance.bootError !== undefined || instance.lastBootFailure !== undefined));
    for (const secret of joinMaterial(pki, apiHost, JOIN_TOKEN)) parameters.set(machineSecretPath(CLUSTER_ID, secret.role, secret.name), secret.value);
    const joined = () => target.objects({ kind: 'Node' }).length;
    const bootErrors = () => instances().flatMap((instance) => (instance.bootError === undefined ? [] : [`${instance.autoScalingGroup}: ${instance.bootError}`]));
    await waitUntil('every machine to join or give up', () => joined() + bootErrors().length === 4, 20_000);
    expect(bootErrors()).toEqual([]);
    expect(joined()).toBe(4);
  });

  it('never join when pkgs.k8s.io serves a Release.key with another primary key', { timeout: 30_000 }, async () => {
    const pki = pkiToPem(await generateClusterPki({ clusterName: spec.name, apiHost, serviceCidr: spec.network.serviceCidr }));
    const target = await startSandboxCluster({ name: CLUSTER_ID, secure: true });
    cluster = target;
    const parameters = new Map<string, string>();
    for (const secret of joinMaterial(pki, apiHost, JOIN_TOKEN)) parameters.set(machineSecretPath(CLUSTER_ID, secret.role, secret.name), secret.value);
    const booted = new SandboxMachines((_scope, name) => parameters.get(name), 0);
    machines = booted;
    booted.serveKubernetesAptKey('0123456789ABCDEF0123456789ABCDEF01234567');
    booted.boot(CLUSTER_ID, target, spec, () => true, groupsForOrder(spec, machineImagesOf(launchTemplates()), { controlPlane: `${CLUSTER_ID}-cp`, pools: { general: `${CLUSTER_ID}-pool-general` } }));
    const instances = () => booted.instancesOfCluster(CLUSTER_ID);
    const failures = () => instances().map((instance) => instance.bootError ?? instance.lastBootFailure);
    await waitUntil('every machine to join or fail a run', () => instances().length === 4 && instances().every((instance, index) => instance.nodeName !== undefined || failures()[index] !== undefined), 20_000);
    expect(failures()).toEqual(Array(4).fill(expect.stringContaining('not exactly the Kubernetes package signing key')));
    expect(target.objects({ kind: 'Node' })).toEqual([]);
  });
});
