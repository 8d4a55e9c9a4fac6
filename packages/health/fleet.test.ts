import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { EC2Client } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec } from '#core';
import { type Ec2Service, LOCAL_CREDENTIALS, SandboxIam, SandboxMachines, type SandboxCluster, groupsForOrder, startEc2Service, startSandboxCluster } from '#sandbox';
import { AwsMachineFleet } from './fleet.ts';

const spec = ClusterSpec.parse({ name: 'fleet', region: 'eu-central-1', nodePools: [{ name: 'general', size: 2 }, { name: 'batch', size: 1 }] });
const groups = { controlPlane: 'kiln-fleet-cp', pools: { general: 'kiln-fleet-pool-general', batch: 'kiln-fleet-pool-batch' } };
const image = { providerIdAtBoot: true, ssmManaged: true };

let cluster: SandboxCluster;
let ec2: Ec2Service;
let fleet: AwsMachineFleet;
const clients = (region: string) => {
  const options = { region, endpoint: ec2.endpoint, credentials: LOCAL_CREDENTIALS };
  return new AwsMachineFleet(new AutoScalingClient(options), new EC2Client(options));
};

beforeAll(async () => {
  const iam = new SandboxIam('000000000000', LOCAL_CREDENTIALS.accessKeyId);
  const machines = new SandboxMachines(() => undefined, 0);
  cluster = await startSandboxCluster({ name: 'fleet' });
  machines.boot('cls_fleet', cluster, spec, () => true, groupsForOrder(spec, { controlPlane: image, pools: { general: image, batch: image } }, groups));
  ec2 = await startEc2Service({ machines, iam });
  fleet = clients(spec.region);
});

afterAll(async () => {
  await ec2.close();
  await cluster.close();
});

describe('the machines of a cluster, through Auto Scaling and EC2', () => {
  it('lists every instance of its groups with its role, pool, zone, state, launch time and private address', async () => {
    const machines = await fleet.machines(groups);
    expect(machines).toHaveLength(6);
    expect(machines.filter((machine) => machine.group.role === 'control-plane').map((machine) => machine.zone).sort()).toEqual(['eu-central-1a', 'eu-central-1b', 'eu-central-1c']);
    expect(machines.filter((machine) => machine.group.role === 'worker' && machine.group.pool === 'general')).toHaveLength(2);
    for (const machine of machines) {
      expect(machine.instanceId).toMatch(/^i-[0-9a-f]{17}$/);
      expect(machine.state).toBe('running');
      expect(Date.now() - Date.parse(machine.launchedAt)).toBeLessThan(60_000);
      expect(machine.privateIp).toMatch(/^10\.0\.\d+\.\d+$/);
    }
    expect(new Set(machines.map((machine) => machine.privateIp)).size).toBe(machines.length);
  });

  it('sees nothing from another region, as AWS keeps regions apart', async () => {
    expect(await clients('us-west-2').machines(groups)).toEqual([]);
  });
});

describe('terminating a machine through its Auto Scaling group', () => {
  it('keeps the group at its size: the group launches a replacement', async () => {
    const [victim] = (await fleet.machines(groups)).filter((machine) => machine.group.role === 'worker' && machine.group.pool === 'batch');
    expect(await fleet.terminate(victim?.instanceId ?? '')).toBe(true);
    const batch = async () => (await fleet.machines(groups)).filter((machine) => machine.group.role === 'worker' && machine.group.pool === 'batch');
    let replacement = await batch();
    for (let tries = 0; tries < 100 && (replacement.length !== 1 || replacement[0]?.instanceId === victim?.instanceId); tries += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      replacement = await batch();
    }
    expect(replacement).toHaveLength(1);
    expect(replacement[0]?.instanceId).not.toBe(victim?.instanceId);
    expect(replacement[0]?.zone).toBe(victim?.zone);
  });

  it('answers false for an instance the group does not have', async () => {
    expect(await fleet.terminate('i-00000000000000000')).toBe(false);
  });
});

describe('removing a machine for good', () => {
  const general = async () => (await fleet.machines(groups)).filter((machine) => machine.group.role === 'worker' && machine.group.pool === 'general');

  it('is refused below the group minimum, and lowers the desired capacity once the minimum is lowered', async () => {
    const [first] = await general();
    await expect(fleet.remove(first?.instanceId ?? '')).rejects.toThrow(/min size constraint/);
    await fleet.resize(groups.pools.general, { min: 1 });
    expect(await fleet.remove(first?.instanceId ?? '')).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Nothing replaces it.
    expect((await general()).map((machine) => machine.instanceId)).not.toContain(first?.instanceId);
    expect(await general()).toHaveLength(1);
  });

  it('cannot lower the minimum of a group in another region', async () => {
    await expect(clients('us-west-2').resize(groups.pools.general, { min: 0 })).rejects.toThrow(/not found/);
  });
});
