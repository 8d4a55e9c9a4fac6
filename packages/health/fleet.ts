import { type AutoScalingClient, DescribeAutoScalingGroupsCommand, TerminateInstanceInAutoScalingGroupCommand, UpdateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, type EC2Client, RebootInstancesCommand } from '@aws-sdk/client-ec2';
import type { MachineGroup, ObservedMachine } from './evaluate.ts';

/** Where a cluster's machines are: its Auto Scaling groups, by role and pool. */
export interface MachineGroups {
  controlPlane: string;
  pools: Readonly<Record<string, string>>;
}

/**
 * The machines of a cluster as the cloud sees them. Production reads Auto
 * Scaling and EC2 (`AwsMachineFleet`); local mode reads the sandbox's machines.
 */
export interface MachineFleet {
  machines(groups: MachineGroups): Promise<ObservedMachine[]>;
  /** Reboots the instance as EC2 does: from outside it, so a hung machine restarts too. */
  reboot(instanceId: string): Promise<void>;
  /**
   * Terminates the instance through its Auto Scaling group without lowering the desired capacity, so the group
   * launches a replacement from its launch template. False when the group no longer has the instance.
   */
  terminate(instanceId: string): Promise<boolean>;
  /**
   * Terminates the instance and lowers its group's desired capacity with it, so nothing replaces it (a scale-in
   * Kiln chose the machine for). False when the group no longer has the instance.
   */
  remove(instanceId: string): Promise<boolean>;
  /** Sets a group's bounds and desired capacity (Auto Scaling refuses to remove machines below the minimum). */
  resize(group: string, capacity: { min?: number; max?: number; desired?: number }): Promise<void>;
}

const EC2_STATES: readonly string[] = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] satisfies ObservedMachine['state'][];

function isState(state: string): state is ObservedMachine['state'] {
  return EC2_STATES.includes(state);
}

/** Auto Scaling names the groups' instances; EC2 says when each launched and what state it is in. */
export class AwsMachineFleet implements MachineFleet {
  constructor(
    private readonly autoScaling: Pick<AutoScalingClient, 'send'>,
    private readonly ec2: Pick<EC2Client, 'send'>,
  ) {}

  async reboot(instanceId: string): Promise<void> {
    await this.ec2.send(new RebootInstancesCommand({ InstanceIds: [instanceId] }));
  }

  terminate(instanceId: string): Promise<boolean> {
    return this.terminateInGroup(instanceId, false);
  }

  remove(instanceId: string): Promise<boolean> {
    return this.terminateInGroup(instanceId, true);
  }

  async resize(group: string, capacity: { min?: number; max?: number; desired?: number }): Promise<void> {
    await this.autoScaling.send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: group, MinSize: capacity.min, MaxSize: capacity.max, DesiredCapacity: capacity.desired }));
  }

  private async terminateInGroup(instanceId: string, decrement: boolean): Promise<boolean> {
    try {
      await this.autoScaling.send(new TerminateInstanceInAutoScalingGroupCommand({ InstanceId: instanceId, ShouldDecrementDesiredCapacity: decrement }));
      return true;
    } catch (error) {
      // Auto Scaling's answer for an instance it does not manage (any more): already terminated, or never one of ours.
      if (error instanceof Error && error.name === 'ValidationError' && /Instance Id not found/i.test(error.message)) return false;
      throw error;
    }
  }

  async machines(groups: MachineGroups): Promise<ObservedMachine[]> {
    const groupOf = new Map<string, MachineGroup>([
      [groups.controlPlane, { role: 'control-plane' }],
      ...Object.entries(groups.pools).map(([pool, name]): [string, MachineGroup] => [name, { role: 'worker', pool }]),
    ]);
    const described = await this.autoScaling.send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [...groupOf.keys()] }));
    const members = (described.AutoScalingGroups ?? []).flatMap((group) =>
      (group.Instances ?? []).flatMap((instance) => {
        const role = groupOf.get(group.AutoScalingGroupName ?? '');
        return role === undefined || instance.InstanceId === undefined ? [] : [{ instanceId: instance.InstanceId, group: role, zone: instance.AvailabilityZone ?? '' }];
      }),
    );
    if (members.length === 0) return [];
    const instances = await this.ec2.send(new DescribeInstancesCommand({ InstanceIds: members.map((member) => member.instanceId) }));
    const byId = new Map(
      (instances.Reservations ?? []).flatMap((reservation) => (reservation.Instances ?? []).map((instance) => [instance.InstanceId ?? '', instance] as const)),
    );
    return members.map((member): ObservedMachine => {
      const instance = byId.get(member.instanceId);
      const state = instance?.State?.Name ?? 'terminated';
      return {
        ...member,
        state: isState(state) ? state : 'terminated',
        launchedAt: (instance?.LaunchTime ?? new Date(0)).toISOString(),
        ...(instance?.InstanceType === undefined ? {} : { instanceType: instance.InstanceType }),
        ...(instance?.PrivateIpAddress === undefined ? {} : { privateIp: instance.PrivateIpAddress }),
      };
    });
  }
}
