import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClusterSpec, StepError, machineOsReleaseOf, newId, type ClusterOrder } from '#core';
import { CLUSTER_TAG, InfrastructureOutputs, SSM_AGENT_ACTIONS, TENANT_TAG, type ClusterProgramInput, type ClusterRef } from '#infra';
import { USER_DATA_LIMIT_BYTES, userDataText } from '../cloud-init/validate.ts';
import { listenerSources } from '../elb/index.ts';
import type { RecordedResource } from './mocks.ts';
import { PUBLIC_IMAGES } from './public-images.ts';
import { SandboxCloud, type ProvisionedCluster } from './sandbox-cloud.ts';

const T = {
  vpc: 'aws:ec2/vpc:Vpc',
  subnet: 'aws:ec2/subnet:Subnet',
  routeTable: 'aws:ec2/routeTable:RouteTable',
  securityGroup: 'aws:ec2/securityGroup:SecurityGroup',
  ingress: 'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule',
  launchTemplate: 'aws:ec2/launchTemplate:LaunchTemplate',
  asg: 'aws:autoscaling/group:Group',
  lb: 'aws:lb/loadBalancer:LoadBalancer',
  listener: 'aws:lb/listener:Listener',
  targetGroup: 'aws:lb/targetGroup:TargetGroup',
  kmsKey: 'aws:kms/key:Key',
  kmsAlias: 'aws:kms/alias:Alias',
} as const;

/** Kiln's functions' addresses, as production passes its NAT gateways' two Elastic IPs. */
const KILN_EGRESS_CIDRS = ['192.0.2.10/32', '192.0.2.11/32'];

/** Resources whose AWS type cannot carry tags. */
const UNTAGGABLE = new Set(['aws:ec2/routeTableAssociation:RouteTableAssociation', 'aws:kms/alias:Alias', 'aws:iam/rolePolicy:RolePolicy']);

interface Ingress {
  groupId: string;
  protocol: string;
  fromPort?: number;
  toPort?: number;
  cidr?: string;
  sourceGroupId?: string;
}

const provisioned: ProvisionedCluster[] = [];
const destroyed: ClusterRef[] = [];
let cloud: SandboxCloud;

beforeAll(() => {
  cloud = new SandboxCloud({
    apiHostFor: (clusterId) => `${clusterId.replaceAll('_', '-')}.api.sandbox.test`,
    onProvisioned: (cluster) => {
      provisioned.push(cluster);
    },
    onDestroyed: (ref) => {
      destroyed.push(ref);
    },
  });
});

afterAll(async () => {
  await cloud.close();
});

/** The release the infrastructure step gives machines today. */
function todaysMachineOs(): string {
  const os = machineOsReleaseOf(new Date());
  if (os === undefined) throw new Error('no machine OS in regular security support today: review MACHINE_OS_RELEASES');
  return os.version;
}

function clusterInput(order: Partial<ClusterOrder> = {}): ClusterProgramInput {
  const spec = ClusterSpec.parse({
    name: 'demo',
    region: 'eu-central-1',
    nodePools: [
      { name: 'general', size: 2 },
      { name: 'batch', size: 3, min: 1, max: 6, instanceType: 'm7g.xlarge' },
    ],
    ...order,
  });
  return {
    tenantId: newId('tenant'),
    clusterId: newId('cluster'),
    spec,
    availabilityZones: ['eu-central-1a', 'eu-central-1b', 'eu-central-1c'],
    machineOs: todaysMachineOs(),
    kilnEgressCidrs: KILN_EGRESS_CIDRS,
    userData: {
      controlPlane: '#cloud-config\nhostname: control-plane\n',
      pools: Object.fromEntries(spec.nodePools.map((pool) => [pool.name, `#cloud-config\nhostname: ${pool.name}\n`])),
    },
  };
}

function ofType(resources: RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((resource) => resource.type === type);
}

function only(resources: RecordedResource[], type: string): RecordedResource {
  const found = ofType(resources, type);
  expect(found).toHaveLength(1);
  const [resource] = found;
  if (!resource) throw new Error(`no ${type}`);
  return resource;
}

function groupNamed(resources: RecordedResource[], suffix: string): RecordedResource {
  const group = ofType(resources, T.securityGroup).find((resource) => resource.name.endsWith(suffix));
  if (!group) throw new Error(`no security group ending in ${suffix}`);
  return group;
}

function ingressRules(resources: RecordedResource[]): Ingress[] {
  return ofType(resources, T.ingress).map((rule) => ({
    groupId: rule.inputs.securityGroupId as string,
    protocol: rule.inputs.ipProtocol as string,
    fromPort: rule.inputs.fromPort as number | undefined,
    toPort: rule.inputs.toPort as number | undefined,
    cidr: rule.inputs.cidrIpv4 as string | undefined,
    sourceGroupId: rule.inputs.referencedSecurityGroupId as string | undefined,
  }));
}

function covers(rule: Ingress, port: number): boolean {
  return rule.protocol === '-1' || ((rule.fromPort ?? 0) <= port && port <= (rule.toPort ?? 65535));
}

describe('SandboxCloud.up', () => {
  it('returns validated outputs that point at the sandbox API host and records the run', async () => {
    const input = clusterInput();
    const outputs = await cloud.up(input);

    expect(InfrastructureOutputs.parse(outputs)).toEqual(outputs);
    const apiHost = `${input.clusterId.replaceAll('_', '-')}.api.sandbox.test`;
    expect(outputs).toMatchObject({
      apiHost,
      apiEndpoint: `https://${apiHost}:6443`,
      controlPlane: { replicas: 3 },
      nodePools: [
        { name: 'general', size: 2 },
        { name: 'batch', size: 3 },
      ],
    });
    expect(outputs.vpcId).toMatch(/^vpc-[0-9a-f]{17}$/);
    expect(outputs.privateSubnetIds.every((id) => /^subnet-[0-9a-f]{17}$/.test(id))).toBe(true);
    expect(outputs.kmsKeyArn).toMatch(/^arn:aws:kms:eu-central-1:\d{12}:key\//);

    const hook = provisioned.find((cluster) => cluster.clusterId === input.clusterId);
    expect(hook).toMatchObject({ tenantId: input.tenantId, outputs, input });
    expect(hook?.resources).toEqual(cloud.resources(input.clusterId));
    expect(cloud.outputs(input.clusterId)).toEqual(outputs);
  });

  it('admits the internet only to the load balancer on 6443, and SSH from nowhere by default', async () => {
    const input = clusterInput();
    const outputs = await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const lbGroup = groupNamed(resources, '-api-lb');
    const rules = ingressRules(resources);

    const open = rules.filter((rule) => rule.cidr === '0.0.0.0/0');
    expect(open).toEqual([{ groupId: lbGroup.id, protocol: 'tcp', fromPort: 6443, toPort: 6443, cidr: '0.0.0.0/0', sourceGroupId: undefined }]);
    expect(rules.filter((rule) => covers(rule, 22))).toEqual([]);

    // Nothing else reaches the machines from an address range except the pod range, which this spec does not need.
    const machineGroups = [groupNamed(resources, '-control-plane').id, groupNamed(resources, '-workers').id];
    expect(rules.filter((rule) => machineGroups.includes(rule.groupId) && rule.cidr !== undefined)).toEqual([]);

    const lb = only(resources, T.lb);
    expect(lb.inputs).toMatchObject({ loadBalancerType: 'network', internal: false, securityGroups: [lbGroup.id] });
    const publicSubnets = ofType(resources, T.subnet).filter((subnet) => !outputs.privateSubnetIds.includes(subnet.id));
    expect([...(lb.inputs.subnets as string[])].sort()).toEqual(publicSubnets.map((subnet) => subnet.id).sort());
    const listener = only(resources, T.listener);
    const targetGroup = only(resources, T.targetGroup);
    expect(listener.inputs).toMatchObject({ port: 6443, protocol: 'TCP', defaultActions: [{ type: 'forward', targetGroupArn: targetGroup.id }] });
    expect(targetGroup.inputs).toMatchObject({ port: 6443, protocol: 'TCP', vpcId: outputs.vpcId });
  });

  it('keeps the API, etcd and kubelet behind the right peers, and opens the Cilium ports between machines', async () => {
    const input = clusterInput();
    await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const lb = groupNamed(resources, '-api-lb').id;
    const cp = groupNamed(resources, '-control-plane').id;
    const workers = groupNamed(resources, '-workers').id;
    const rules = ingressRules(resources);
    const sources = (groupId: string, protocol: string, port: number) =>
      rules
        .filter((rule) => rule.groupId === groupId && rule.protocol === protocol && covers(rule, port))
        .map((rule) => rule.sourceGroupId ?? rule.cidr)
        .sort();

    expect(sources(cp, 'tcp', 6443)).toEqual([lb]);
    expect(sources(workers, 'tcp', 6443)).toEqual([]);
    expect(sources(cp, 'tcp', 2379)).toEqual([cp]);
    expect(sources(cp, 'tcp', 2380)).toEqual([cp]);
    expect(sources(workers, 'tcp', 2379)).toEqual([]);
    expect(sources(cp, 'tcp', 10250)).toEqual([cp]);
    expect(sources(workers, 'tcp', 10250)).toEqual([cp]);
    for (const group of [cp, workers]) {
      expect(sources(group, 'udp', 51871)).toEqual([cp, workers].sort());
      expect(sources(group, 'udp', 8472)).toEqual([cp, workers].sort());
      expect(sources(group, 'tcp', 4240)).toEqual([cp, workers].sort());
    }
  });

  it('limits the API to the allowed ranges plus the NAT addresses, and SSH to its own ranges', async () => {
    const input = clusterInput({
      network: { apiAllowedCidrs: ['198.51.100.0/24'] },
      ssh: { allowedCidrs: ['192.0.2.10/32'] },
    });
    await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const rules = ingressRules(resources);
    const lb = groupNamed(resources, '-api-lb').id;
    const natAddresses = ofType(resources, 'aws:ec2/eip:Eip').length;

    expect(rules.some((rule) => rule.cidr === '0.0.0.0/0')).toBe(false);
    const apiRanges = rules.filter((rule) => rule.groupId === lb).map((rule) => rule.cidr);
    expect(apiRanges).toContain('198.51.100.0/24');
    expect(apiRanges.filter((cidr) => cidr?.endsWith('/32'))).toHaveLength(natAddresses + KILN_EGRESS_CIDRS.length);
    const ssh = rules.filter((rule) => covers(rule, 22));
    expect(ssh.map((rule) => rule.cidr)).toEqual(['192.0.2.10/32', '192.0.2.10/32']);
    expect(ssh.every((rule) => rule.fromPort === 22 && rule.toPort === 22 && rule.protocol === 'tcp')).toBe(true);
    // No open pod range: pod traffic between machines is VXLAN (the only routing Kiln offers), encrypted by WireGuard.
    expect(rules.filter((rule) => rule.protocol === '-1')).toEqual([]);
  });

  it("always lets Kiln's egress addresses reach the API through the load balancer, however the order narrows it", async () => {
    const input = clusterInput({ network: { apiAllowedCidrs: ['198.51.100.0/24'] } });
    await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const natAddresses = resources.filter((resource) => /-api-lb-in-nat-\d+$/.test(resource.name)).map((rule) => String(rule.inputs.cidrIpv4));
    expect(natAddresses).toHaveLength(ofType(resources, 'aws:ec2/eip:Eip').length);
    // What the load balancer's security group admits on its listener, as the sandbox's load balancer enforces it.
    expect(listenerSources(resources, 6443).sort()).toEqual([...KILN_EGRESS_CIDRS, '198.51.100.0/24', ...natAddresses].sort());
  });

  it("declares Kiln's rule once when the order lists Kiln's address too (EC2 refuses a duplicate rule)", async () => {
    const input = clusterInput({ network: { apiAllowedCidrs: ['192.0.2.10/32', '198.51.100.0/24'] } });
    await cloud.up(input);
    const lb = groupNamed(cloud.resources(input.clusterId), '-api-lb').id;
    const kiln = ingressRules(cloud.resources(input.clusterId)).filter((rule) => rule.groupId === lb && rule.cidr === '192.0.2.10/32');
    expect(kiln).toHaveLength(1);
    expect(listenerSources(cloud.resources(input.clusterId), 6443)).toEqual(expect.arrayContaining(['192.0.2.10/32', '192.0.2.11/32', '198.51.100.0/24']));
  });

  it('launches machines with IMDSv2 only, no public address and disks encrypted with the cluster key', async () => {
    const input = clusterInput();
    const outputs = await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const templates = ofType(resources, T.launchTemplate);
    expect(templates).toHaveLength(1 + input.spec.nodePools.length);

    for (const template of templates) {
      expect(template.inputs).toMatchObject({
        metadataOptions: { httpTokens: 'required', httpPutResponseHopLimit: 1 },
        networkInterfaces: [{ associatePublicIpAddress: 'false' }],
      });
      const disks = template.inputs.blockDeviceMappings as { ebs?: { encrypted?: string; kmsKeyId?: string } }[];
      expect(disks.length).toBeGreaterThan(0);
      for (const disk of disks) expect(disk.ebs).toMatchObject({ encrypted: 'true', kmsKeyId: outputs.kmsKeyArn });
    }
    // Gzipped, within EC2's 16 KB, and what cloud-init reads once it decompressed it.
    for (const template of templates) expect(Buffer.from(template.inputs.userData as string, 'base64').length).toBeLessThanOrEqual(USER_DATA_LIMIT_BYTES);
    const userData = templates.map((template) => userDataText(template.inputs.userData)).sort();
    expect(userData).toEqual([input.userData.controlPlane, ...Object.values(input.userData.pools)].sort());

    const key = only(resources, T.kmsKey);
    expect(key.inputs).toMatchObject({ enableKeyRotation: true });
    expect(only(resources, T.kmsAlias).inputs).toMatchObject({ name: `alias/kiln/${input.clusterId}`, targetKeyId: key.id });
    expect(ofType(resources, T.subnet).every((subnet) => subnet.inputs.mapPublicIpOnLaunch === false)).toBe(true);
  });

  it('picks the image by architecture and gives each role read access to its own join material only', async () => {
    const input = clusterInput({ encryption: { atRest: { provider: 'kms', keySource: 'kms' } } });
    const outputs = await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const template = (suffix: string) => {
      const found = ofType(resources, T.launchTemplate).find((candidate) => candidate.name.endsWith(suffix));
      if (!found) throw new Error(`no launch template ending in ${suffix}`);
      return found;
    };
    const [cp, general, batch] = [template('-cp'), template('-pool-general'), template('-pool-batch')];
    expect(cp.inputs.imageId).toBe(general.inputs.imageId);
    expect(batch.inputs.imageId).not.toBe(general.inputs.imageId);
    const imageOf = (launchTemplate: RecordedResource) => PUBLIC_IMAGES.find((image) => image.imageId === launchTemplate.inputs.imageId);
    expect([imageOf(general)?.architecture, imageOf(batch)?.architecture]).toEqual(['x86_64', 'arm64']);

    const profiles = ofType(resources, 'aws:iam/instanceProfile:InstanceProfile');
    expect(profiles).toHaveLength(2);
    const profileArnOf = (launchTemplate: typeof cp) => (launchTemplate.inputs.iamInstanceProfile as { arn: string }).arn;
    expect(profileArnOf(general)).toBe(profileArnOf(batch));
    expect(profileArnOf(cp)).not.toBe(profileArnOf(general));

    type Policy = { Statement: { Action: string[]; Resource: string }[] };
    const policyOf = (suffix: string) => {
      const found = ofType(resources, 'aws:iam/rolePolicy:RolePolicy').find((candidate) => candidate.name.endsWith(suffix));
      if (!found) throw new Error(`no role policy ending in ${suffix}`);
      return JSON.parse(found.inputs.policy as string) as Policy;
    };
    const workerPolicy = policyOf('-worker');
    expect(workerPolicy.Statement).toEqual([
      { Effect: 'Allow', Action: ['ssm:GetParameter'], Resource: expect.stringMatching(new RegExp(`:parameter/kiln/${input.clusterId}/worker/\\*$`)) as unknown },
      { Effect: 'Allow', Action: [...SSM_AGENT_ACTIONS], Resource: '*' },
      { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: outputs.kmsKeyArn },
    ]);
    // The agent's calls and nothing else of SSM: no documents, no sessions started from the machine, no parameters outside its path.
    expect(SSM_AGENT_ACTIONS.every((action) => /^(ssm:UpdateInstanceInformation|ssmmessages:|ec2messages:)/.test(action))).toBe(true);
    const controlPlanePolicy = policyOf('-cp');
    expect(controlPlanePolicy.Statement.map((statement) => statement.Action)).toEqual([
      ['ssm:GetParameter'],
      [...SSM_AGENT_ACTIONS],
      ['kms:Decrypt'],
      ['ssm:PutParameter'],
      ['kms:Encrypt', 'kms:Decrypt', 'kms:DescribeKey'],
    ]);
    expect(controlPlanePolicy.Statement[0]?.Resource).toMatch(new RegExp(`/kiln/${input.clusterId}/control-plane/\\*$`));
  });

  it("boots every machine from Debian's newest image of the release in regular security support today", async () => {
    const input = clusterInput();
    await cloud.up(input);
    const os = machineOsReleaseOf(new Date());
    for (const template of ofType(cloud.resources(input.clusterId), T.launchTemplate)) {
      const image = PUBLIC_IMAGES.find((candidate) => candidate.imageId === template.inputs.imageId);
      const newest = PUBLIC_IMAGES.filter((candidate) => candidate.architecture === image?.architecture && candidate.name.startsWith(`debian-${os?.version ?? ''}-`))
        .map((candidate) => candidate.name)
        .sort()
        .at(-1);
      expect({ template: template.name, image: image?.name }).toEqual({ template: template.name, image: newest });
    }
  });

  it('boots no machine from an image built before the release\'s reviewed point release when Debian withdraws the newer builds', async () => {
    const os = machineOsReleaseOf(new Date());
    const newer = PUBLIC_IMAGES.filter((image) => image.name.startsWith(`${os?.image.namePrefix ?? ''}-`) && image.creationDate.slice(0, 10) >= (os?.image.builtOnOrAfter ?? ''));
    const withdrawn = new SandboxCloud({ warmSpare: false, withdrawnImages: newer.map((image) => image.name) });
    try {
      const input = clusterInput();
      await expect(withdrawn.up(input)).rejects.toThrow(new RegExp(`built .* before ${os?.image.builtOnOrAfter ?? ''}`));
      expect(withdrawn.resources(input.clusterId).filter((resource) => resource.type === T.launchTemplate)).toEqual([]);
    } finally {
      await withdrawn.close();
    }
  });

  it("lets only the cluster's own Auto Scaling role use its key, and launches every group with that role", async () => {
    const input = clusterInput();
    await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const role = only(resources, 'aws:iam/serviceLinkedRole:ServiceLinkedRole');
    expect(role.inputs).toMatchObject({ awsServiceName: 'autoscaling.amazonaws.com' });
    expect(role.id).toMatch(/:role\/aws-service-role\/autoscaling\.amazonaws\.com\/AWSServiceRoleForAutoScaling_kiln-[0-9a-f]{10}$/);

    type Statement = { Sid: string; Principal: { AWS: string } };
    const statements = (JSON.parse(only(resources, T.kmsKey).inputs.policy as string) as { Statement: Statement[] }).Statement;
    expect(statements.filter((statement) => statement.Sid.startsWith('AutoScaling')).map((statement) => statement.Principal.AWS)).toEqual([role.id, role.id]);
    const groups = ofType(resources, T.asg);
    expect(groups).toHaveLength(1 + input.spec.nodePools.length);
    expect(groups.map((group) => group.inputs.serviceLinkedRoleArn)).toEqual(groups.map(() => role.id));
  });

  it('spreads three control plane machines over three private subnets behind the load balancer, and sizes pools from the spec', async () => {
    const input = clusterInput();
    const outputs = await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    const groups = ofType(resources, T.asg);
    const controlPlane = groups.find((group) => group.id === outputs.controlPlane.asgName);
    if (!controlPlane) throw new Error('no control plane group');

    const subnets = controlPlane.inputs.vpcZoneIdentifiers as string[];
    expect(new Set(subnets).size).toBe(3);
    expect([...subnets].sort()).toEqual([...outputs.privateSubnetIds].sort());
    expect(controlPlane.inputs).toMatchObject({ minSize: 3, maxSize: 3, desiredCapacity: 3, targetGroupArns: [only(resources, T.targetGroup).id] });

    // Private subnets route only to a NAT gateway, never to the internet gateway.
    const privateTables = ofType(resources, T.routeTable).filter((table) => table.name.includes('-private-'));
    expect(privateTables).toHaveLength(3);
    for (const table of privateTables) {
      const routes = table.inputs.routes as { natGatewayId?: string; gatewayId?: string }[];
      expect(routes.every((route) => route.natGatewayId?.startsWith('nat-') && route.gatewayId === undefined)).toBe(true);
    }

    const pool = (name: string) => groups.find((group) => group.id === outputs.nodePools.find((entry) => entry.name === name)?.asgName);
    expect(pool('general')?.inputs).toMatchObject({ minSize: 2, maxSize: 2, desiredCapacity: 2 });
    expect(pool('batch')?.inputs).toMatchObject({ minSize: 1, maxSize: 6, desiredCapacity: 3 });
    expect(pool('batch')?.inputs.targetGroupArns).toBeUndefined();
  });

  it('tags every taggable resource with its tenant and cluster', async () => {
    const input = clusterInput();
    await cloud.up(input);
    const resources = cloud.resources(input.clusterId);
    for (const resource of resources.filter((candidate) => !UNTAGGABLE.has(candidate.type))) {
      const tags =
        resource.type === T.asg
          ? Object.fromEntries((resource.inputs.tags as { key: string; value: string }[]).map((tag) => [tag.key, tag.value]))
          : resource.inputs.tags as Record<string, string> | undefined;
      expect({ name: resource.name, tags }).toMatchObject({ tags: { [TENANT_TAG]: input.tenantId, [CLUSTER_TAG]: input.clusterId } });
    }
  });

  it('gives two clusters no resource name in common', async () => {
    const first = clusterInput();
    const second = { ...clusterInput(), tenantId: first.tenantId };
    await Promise.all([cloud.up(first), cloud.up(second)]);
    const names = (clusterId: string) =>
      new Set(cloud.resources(clusterId).flatMap((resource) => [resource.name, ...(typeof resource.inputs.name === 'string' ? [resource.inputs.name] : [])]));
    const a = names(first.clusterId);
    const b = names(second.clusterId);
    expect(a.size).toBeGreaterThan(40);
    expect([...a].filter((name) => b.has(name))).toEqual([]);
    expect(cloud.outputs(first.clusterId)?.controlPlane.asgName).not.toBe(cloud.outputs(second.clusterId)?.controlPlane.asgName);
  });

  it('fails permanently when the program rejects the order, and transiently on injected faults', async () => {
    const tooSmall = clusterInput({ network: { vpcCidr: '10.0.0.0/28' } });
    await expect(cloud.up(tooSmall)).rejects.toMatchObject({ name: 'Kiln.Permanent', message: expect.stringContaining('/16 and /24') as unknown });
    expect(cloud.resources(tooSmall.clusterId)).toEqual([]);

    const input = clusterInput();
    cloud.failNext('up', { retriable: true, message: 'RequestLimitExceeded' });
    const failure = cloud.up(input);
    await expect(failure).rejects.toBeInstanceOf(StepError);
    await expect(failure).rejects.toMatchObject({ retriable: true, message: 'RequestLimitExceeded' });
    await expect(cloud.up(input)).resolves.toMatchObject({ controlPlane: { replicas: 3 } });
  });

  it('answers a second update of the same cluster while one runs as a retriable conflict', async () => {
    const input = clusterInput();
    const results = await Promise.allSettled([cloud.up(input), cloud.up(input)]);
    expect(results.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
    const rejected = results.find((result) => result.status === 'rejected');
    expect(rejected?.reason).toMatchObject({ retriable: true, name: 'Kiln.Transient' });
  });

  it('rejects a machine OS the version table does not know before running anything', async () => {
    const input = clusterInput();
    await expect(cloud.up({ ...input, machineOs: '11' })).rejects.toMatchObject({
      name: 'Kiln.Permanent',
      message: expect.stringContaining('machineOs: is not a machine OS release Kiln knows') as unknown,
    });
  });

  it('rejects input without user data for a pool before running anything', async () => {
    const input = clusterInput();
    await expect(cloud.up({ ...input, userData: { ...input.userData, pools: {} } })).rejects.toMatchObject({
      name: 'Kiln.Permanent',
      message: expect.stringContaining('userData.pools.general') as unknown,
    });
    expect(cloud.resources(input.clusterId)).toEqual([]);
  });
});

describe('SandboxCloud.destroy', () => {
  it('forgets the cluster and tells the hook, and a second destroy is harmless', async () => {
    const input = clusterInput();
    const outputs = await cloud.up(input);
    expect(cloud.resources(input.clusterId).length).toBeGreaterThan(0);

    await cloud.destroy({ tenantId: input.tenantId, clusterId: input.clusterId });
    expect(cloud.resources(input.clusterId)).toEqual([]);
    expect(cloud.outputs(input.clusterId)).toBeUndefined();
    await cloud.destroy({ tenantId: input.tenantId, clusterId: input.clusterId });
    // The first destroy hands the hook what the stack had exported (the sandbox schedules its KMS key's deletion).
    expect(destroyed.filter((ref) => ref.clusterId === input.clusterId)).toEqual([
      { tenantId: input.tenantId, clusterId: input.clusterId, outputs },
      { tenantId: input.tenantId, clusterId: input.clusterId },
    ]);
  });

  it("does not touch a cluster when another tenant asks", async () => {
    const input = clusterInput();
    await cloud.up(input);
    await cloud.destroy({ tenantId: newId('tenant'), clusterId: input.clusterId });
    expect(cloud.resources(input.clusterId).length).toBeGreaterThan(0);
  });
});

describe('SandboxCloud options', () => {
  it('lets the caller rewrite the API endpoint, and runs without a warm spare', async () => {
    const local = new SandboxCloud({
      warmSpare: false,
      apiHostFor: () => '127.0.0.1',
      apiEndpointFor: (clusterId, apiHost) => `http://${apiHost}:18443/${clusterId}`,
    });
    try {
      const input = clusterInput();
      const outputs = await local.up(input);
      expect(outputs).toMatchObject({ apiHost: '127.0.0.1', apiEndpoint: `http://127.0.0.1:18443/${input.clusterId}` });
      expect(local.lastRun).toMatchObject({ clusterId: input.clusterId, warm: false });
    } finally {
      await local.close();
    }
  });

  it('gives up on a run that outlasts its deadline, as a retriable failure', async () => {
    const impatient = new SandboxCloud({ warmSpare: false, runTimeoutMs: 50 });
    try {
      const input = clusterInput();
      await expect(impatient.up(input)).rejects.toMatchObject({ name: 'Kiln.Transient', message: expect.stringContaining('timed out') as unknown });
      expect(impatient.resources(input.clusterId)).toEqual([]);
    } finally {
      await impatient.close();
    }
  });

  it('refuses work once closed', async () => {
    const closed = new SandboxCloud();
    await closed.close();
    await expect(closed.up(clusterInput())).rejects.toThrow(/closed/);
  });
});

describe('SandboxCloud accounts', () => {
  const autoScalingRoles = (roles: string[]) => roles.filter((arn) => arn.includes(':role/aws-service-role/autoscaling.amazonaws.com/'));

  it('builds the first cluster of a fresh account, a second one beside it, and each again after the other is gone', async () => {
    // No Auto Scaling group has ever run in this account, so not even Auto Scaling's default role exists.
    const fresh = new SandboxCloud({ warmSpare: false, accountId: '444455556666' });
    try {
      const first = clusterInput();
      const second = clusterInput();
      await expect(fresh.up(first)).resolves.toMatchObject({ kmsKeyArn: expect.stringMatching(/^arn:aws:kms:eu-central-1:444455556666:key\//) as unknown });
      await expect(fresh.up(second)).resolves.toMatchObject({ controlPlane: { replicas: 3 } });
      // A second `up` of a stack updates what it holds.
      await expect(fresh.up(first)).resolves.toMatchObject({ controlPlane: { replicas: 3 } });
      const roles = autoScalingRoles(fresh.iamRoles());

      await fresh.destroy({ tenantId: first.tenantId, clusterId: first.clusterId });
      await expect(fresh.up(second)).resolves.toMatchObject({ controlPlane: { replicas: 3 } });
      await expect(fresh.up(first)).resolves.toMatchObject({ controlPlane: { replicas: 3 } });
      expect(autoScalingRoles(fresh.iamRoles()).sort()).toEqual([...roles].sort());
    } finally {
      await fresh.close();
    }
  });
});
