import { type Server, type Socket, connect, createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { RecordedResource } from '../cloud/index.ts';
import { LOAD_BALANCER_ADDRESS } from '../kube/index.ts';
import { listenerSources } from './listener-sources.ts';
import { type SandboxNetworkLoadBalancer, startNetworkLoadBalancer } from './network-load-balancer.ts';

const LB_ARN = 'arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/net/api/1';

const resource = (type: string, name: string, id: string, inputs: Record<string, unknown>): RecordedResource => ({ type, name, id, inputs });
const ingress = (name: string, groupId: string, rule: Record<string, unknown>) => resource('aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule', name, `sgr-${name}`, { securityGroupId: groupId, ...rule });

/** A network load balancer with one TCP listener on 6443 and the security group `sg-lb`, as the cluster program declares it. */
function stack(extra: RecordedResource[], balancer: Record<string, unknown> = { securityGroups: ['sg-lb'] }): RecordedResource[] {
  return [
    resource('aws:ec2/securityGroup:SecurityGroup', 'lb', 'sg-lb', {}),
    resource('aws:ec2/securityGroup:SecurityGroup', 'machines', 'sg-machines', {}),
    resource('aws:lb/loadBalancer:LoadBalancer', 'api', LB_ARN, { loadBalancerType: 'network', internal: false, ...balancer }),
    resource('aws:lb/listener:Listener', 'api-6443', `${LB_ARN}/listener`, { loadBalancerArn: LB_ARN, port: 6443, protocol: 'TCP' }),
    ...extra,
  ];
}

describe('the sources a network load balancer admits on a listener port', () => {
  it('are the CIDRs of its own groups’ inbound rules that let TCP in on that port', () => {
    const resources = stack([
      ingress('allowed', 'sg-lb', { ipProtocol: 'tcp', fromPort: 6443, toPort: 6443, cidrIpv4: '198.51.100.0/24' }),
      ingress('range', 'sg-lb', { ipProtocol: 'tcp', fromPort: 6000, toPort: 7000, cidrIpv4: '203.0.113.7/32' }),
      ingress('all-protocols', 'sg-lb', { ipProtocol: '-1', cidrIpv4: '192.0.2.0/28' }),
      ingress('other-port', 'sg-lb', { ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidrIpv4: '192.0.2.64/26' }),
      ingress('udp', 'sg-lb', { ipProtocol: 'udp', fromPort: 6443, toPort: 6443, cidrIpv4: '192.0.2.128/26' }),
      ingress('other-group', 'sg-machines', { ipProtocol: 'tcp', fromPort: 6443, toPort: 6443, cidrIpv4: '0.0.0.0/0' }),
      ingress('from-a-group', 'sg-lb', { ipProtocol: 'tcp', fromPort: 6443, toPort: 6443, referencedSecurityGroupId: 'sg-machines' }),
    ]);
    expect(listenerSources(resources, 6443).sort()).toEqual(['192.0.2.0/28', '198.51.100.0/24', '203.0.113.7/32']);
  });

  it('read inline rules and security group rules as well', () => {
    const resources = stack([
      resource('aws:ec2/securityGroup:SecurityGroup', 'inline', 'sg-inline', { ingress: [{ protocol: 'tcp', fromPort: 6443, toPort: 6443, cidrBlocks: ['198.51.100.0/25'] }] }),
      resource('aws:ec2/securityGroupRule:SecurityGroupRule', 'rule', 'sgrule-1', { type: 'ingress', securityGroupId: 'sg-lb', protocol: 'tcp', fromPort: 6443, toPort: 6443, cidrBlocks: ['203.0.113.0/24'] }),
      resource('aws:ec2/securityGroupRule:SecurityGroupRule', 'egress', 'sgrule-2', { type: 'egress', securityGroupId: 'sg-lb', protocol: '-1', cidrBlocks: ['0.0.0.0/0'] }),
    ]);
    expect(listenerSources(resources, 6443)).toEqual(['203.0.113.0/24']);
    expect(listenerSources(stack(resources, { securityGroups: ['sg-lb', 'sg-inline'] }), 6443).sort()).toEqual(['198.51.100.0/25', '203.0.113.0/24']);
  });

  it('are everyone without security groups, and no one on a port without a listener', () => {
    expect(listenerSources(stack([], { securityGroups: [] }), 6443)).toEqual(['0.0.0.0/0']);
    expect(listenerSources(stack([ingress('open', 'sg-lb', { ipProtocol: '-1', cidrIpv4: '0.0.0.0/0' })]), 443)).toEqual([]);
  });
});

/** Sends a line through a fresh connection and resolves with what came back, or rejects when the connection drops first. */
function roundTrip(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, LOAD_BALANCER_ADDRESS, () => socket.write(line));
    socket.once('data', (data) => {
      resolve(data.toString());
      socket.end();
    });
    socket.once('error', reject);
    socket.once('close', () => {
      reject(new Error('connection closed without an answer'));
    });
  });
}

describe('the sandbox network load balancer', () => {
  let target: Server;
  let balancer: SandboxNetworkLoadBalancer;

  beforeEach(async () => {
    // The target echoes what it reads.
    target = createServer((socket) => socket.pipe(socket));
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const address = target.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    balancer = await startNetworkLoadBalancer({ target: { host: '127.0.0.1', port }, clientAddress: '192.0.2.10' });
  });

  afterEach(async () => {
    await balancer.close();
    await new Promise<void>((resolve) => {
      target.close(() => {
        resolve();
      });
    });
  });

  it('admits no one until its rules exist, then forwards the connections its rules admit', async () => {
    await expect(roundTrip(balancer.port, 'hello')).rejects.toThrow();
    expect(balancer.refused).toEqual([{ at: expect.any(String), clientAddress: '192.0.2.10' }]);
    balancer.admit(['198.51.100.0/24', '192.0.2.0/24']);
    expect(await roundTrip(balancer.port, 'hello')).toBe('hello');
  });

  it('refuses a new connection once its rules no longer hold the client, and keeps one it already tracks', async () => {
    balancer.admit(['192.0.2.10/32']);
    const tracked: Socket = connect(balancer.port, LOAD_BALANCER_ADDRESS);
    const echo = (line: string) =>
      new Promise<string>((resolve) => {
        tracked.once('data', (data) => {
          resolve(data.toString());
        });
        tracked.write(line);
      });
    // An answer means the balancer took the connection under the rules of then.
    expect(await echo('first')).toBe('first');
    balancer.admit(['198.51.100.0/24']);
    expect(balancer.admits('192.0.2.10')).toBe(false);
    await expect(roundTrip(balancer.port, 'new')).rejects.toThrow();
    expect(await echo('still here')).toBe('still here');
    tracked.destroy();
  });
});
