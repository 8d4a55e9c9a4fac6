import { describe, expect, it } from 'vitest';
import { ClusterSpec } from './cluster-spec.ts';
import { UnprocessableError } from './errors.ts';
import { assertOrderRules, cidrsOverlap, orderProblems } from './order-rules.ts';

const smallest = { name: 'demo', region: 'eu-central-1', nodePools: [{ name: 'default', size: 2 }] };

function problemsOf(order: Record<string, unknown>) {
  return orderProblems(ClusterSpec.parse(order), { now: new Date('2026-11-29T12:00:00Z') });
}

describe('the order schema', () => {
  it('fills secure defaults into the smallest order', () => {
    const spec = ClusterSpec.parse(smallest);
    expect(spec.controlPlane.replicas).toBe(3);
    expect(spec.encryption.transparent).toEqual({ enabled: true, type: 'wireguard', strictMode: true, nodeEncryption: true });
    expect(spec.encryption.atRest.provider).toBe('secretbox');
    expect(spec.podSecurity.defaultLevel).toBe('restricted');
    expect(spec.ssh).toEqual({ mode: 'managed', allowedCidrs: [] });
    expect(problemsOf(smallest)).toEqual([]);
  });

  it('rejects unknown fields and bad names with their paths', () => {
    const result = ClusterSpec.safeParse({ ...smallest, name: 'Not_A_Label', colour: 'blue' });
    expect(result.success).toBe(false);
    const paths = result.error?.issues.map((issue) => issue.path.join('/'));
    expect(paths).toContain('name');
    expect(result.error?.issues.some((issue) => issue.code === 'unrecognized_keys')).toBe(true);
  });
});

describe('cross-field rules', () => {
  it.each([2, 4])('refuses %i control plane replicas', (replicas) => {
    expect(problemsOf({ ...smallest, controlPlane: { replicas } })).toEqual([
      expect.objectContaining({ pointer: '/controlPlane/replicas' }),
    ]);
  });

  it('points at the second of two pools with one name', () => {
    const problems = problemsOf({ ...smallest, nodePools: [{ name: 'a', size: 1 }, { name: 'b', size: 1 }, { name: 'a', size: 1 }] });
    expect(problems).toEqual([{ pointer: '/nodePools/2/name', detail: 'repeats the name of /nodePools/0' }]);
  });

  it('finds overlapping CIDRs', () => {
    expect(cidrsOverlap('10.0.0.0/16', '10.0.128.0/17')).toBe(true);
    expect(cidrsOverlap('10.0.0.0/16', '10.1.0.0/16')).toBe(false);
    const problems = problemsOf({ ...smallest, network: { vpcCidr: '10.0.0.0/8', podCidr: '10.244.0.0/16' } });
    expect(problems.map((problem) => ('pointer' in problem ? problem.pointer : ''))).toEqual([
      '/network/vpcCidr',
      '/network/podCidr',
      '/network/serviceCidr',
    ]);
  });

  it('checks the length of a user-provided key per provider', () => {
    const sixteen = Buffer.alloc(16, 1).toString('base64');
    const thirtyTwo = Buffer.alloc(32, 1).toString('base64');
    const order = (provider: string, key: string) => ({ ...smallest, encryption: { atRest: { provider, keySource: 'user', key } } });
    expect(problemsOf(order('aesgcm', sixteen))).toEqual([]);
    expect(problemsOf(order('secretbox', thirtyTwo))).toEqual([]);
    expect(problemsOf(order('secretbox', sixteen))).toEqual([
      { pointer: '/encryption/atRest/key', detail: 'must decode to 32 bytes for secretbox, not 16' },
    ]);
  });

  it('needs the user-provided key in an order, but not in a stored spec, where it was sealed and removed', () => {
    const withoutKey = ClusterSpec.parse({ ...smallest, encryption: { atRest: { provider: 'secretbox', keySource: 'user' } } });
    expect(orderProblems(withoutKey)).toEqual([{ pointer: '/encryption/atRest/key', detail: 'is required when keySource is user' }]);
    expect(orderProblems(withoutKey, { stored: true })).toEqual([]);
  });

  it('needs a public key for self-managed SSH and min <= size <= max', () => {
    const problems = problemsOf({ ...smallest, ssh: { mode: 'self-managed' }, nodePools: [{ name: 'p', size: 3, min: 4, max: 2 }] });
    expect(problems.map((problem) => ('pointer' in problem ? problem.pointer : ''))).toEqual(['/nodePools/0/min', '/nodePools/0/max', '/ssh/publicKey']);
  });

  it('refuses native routing, saying why a VPC would not route pod addresses, and points at the member', () => {
    const problems = problemsOf({ ...smallest, network: { routingMode: 'native' } });
    expect(problems).toEqual([{ pointer: '/network/routingMode', detail: expect.stringMatching(/^native routing is not offered on AWS: .*ENI IPAM.*Use tunnel/) }]);
    expect(problemsOf({ ...smallest, network: { routingMode: 'tunnel' } })).toEqual([]);
  });

  it('refuses the kms provider while Kiln has no KMS plugin image, and takes it once its operator named one', () => {
    const kms = ClusterSpec.parse({ ...smallest, encryption: { atRest: { provider: 'kms', keySource: 'kms' } } });
    const now = new Date('2026-11-29T12:00:00Z');
    expect(orderProblems(kms, { now })).toEqual([{ pointer: '/encryption/atRest/provider', detail: expect.stringMatching(/^kms is not available here: .*publishes no image/) }]);
    expect(orderProblems(kms, { now, kmsPluginImage: `registry.example.com/aws-encryption-provider@sha256:${'a'.repeat(64)}` })).toEqual([]);
    // A stored spec was accepted on its day.
    expect(orderProblems(kms, { now, stored: true })).toEqual([]);
  });

  it('refuses every new order on a day no machine OS has regular security support, but not a stored spec', () => {
    const spec = ClusterSpec.parse(smallest);
    const afterTrixie = { now: new Date('2028-08-10T12:00:00Z') };
    expect(orderProblems(spec, afterTrixie)).toContainEqual({ pointer: '', detail: expect.stringMatching(/^Kiln has no machine operating system in regular security support today/) as unknown });
    expect(() => {
      assertOrderRules(spec, afterTrixie);
    }).toThrow(/^The order cannot be built: Kiln has no machine operating system/);
    expect(orderProblems(spec, { ...afterTrixie, stored: true })).toEqual([]);
  });

  it('throws one UnprocessableError carrying every problem', () => {
    const spec = ClusterSpec.parse({ ...smallest, controlPlane: { replicas: 4 }, nodePools: [{ name: 'a', size: 0 }] });
    expect(() => {
      assertOrderRules(spec);
    }).toThrow(UnprocessableError);
    try {
      assertOrderRules(spec);
    } catch (error) {
      expect((error as UnprocessableError).errors).toHaveLength(2);
      expect((error as UnprocessableError).detail).toBe(
        'The order cannot be built: /controlPlane/replicas must be 1, 3 or 5: an even number of etcd members tolerates no more failures than one fewer (and 1 more problem, see errors)',
      );
    }
  });
});

describe('the Kubernetes version of an order', () => {
  const reviewed = new Date('2026-11-29T12:00:00Z');

  it('refuses a new cluster on a minor past its end of life, naming what Kiln offers in the detail', () => {
    const spec = ClusterSpec.parse({ ...smallest, kubernetesVersion: '1.33' });
    expect(() => {
      assertOrderRules(spec, { now: reviewed });
    }).toThrow(
      expect.objectContaining({
        code: 'unprocessable',
        detail:
          'The order cannot be built: /kubernetesVersion Kubernetes 1.33 reached its end of life on 2026-06-28 and receives no security fixes. Kiln offers Kubernetes 1.35 (the default).',
      }) as Error,
    );
  });

  it('keeps accepting a stored spec on that minor, so running clusters can still be changed and deleted', () => {
    const spec = ClusterSpec.parse({ ...smallest, kubernetesVersion: '1.33' });
    expect(orderProblems(spec, { stored: true, now: reviewed })).toEqual([]);
  });

  it('builds the default minor when the order names none', () => {
    expect(orderProblems(ClusterSpec.parse(smallest), { now: reviewed })).toEqual([]);
    expect(ClusterSpec.parse(smallest).kubernetesVersion).toBe('1.35');
  });

  it('answers a version that is not a minor with a shape error', () => {
    expect(ClusterSpec.safeParse({ ...smallest, kubernetesVersion: '1.35.2' }).error?.issues[0]?.message).toBe('must be a Kubernetes minor version such as 1.35');
  });
});

describe('whose AWS account an order reaches into', () => {
  const kilnAccountId = '000011112222';
  const tenantRole = 'arn:aws:iam::333344445555:role/kiln-provisioner';
  const keyIn = (account: string) => `arn:aws:kms:eu-central-1:${account}:key/0d7c6b2a-1f2e-4c3d-9a8b-7c6d5e4f3a2b`;
  const kmsOrder = (kmsKeyArn: string) => ({ encryption: { atRest: { provider: 'kms', keySource: 'kms', kmsKeyArn } } });
  const options = { now: new Date('2026-11-29T12:00:00Z'), kilnAccountId, kmsPluginImage: `public.ecr.aws/example/aws-encryption-provider@sha256:${'0'.repeat(64)}` };
  const problemsIn = (order: Record<string, unknown>) => orderProblems(ClusterSpec.parse({ ...smallest, ...order }), options).map((problem) => problem.pointer);

  it("refuses an external ID in the order: Kiln issues the tenant's, and says where to read it", () => {
    const problems = orderProblems(ClusterSpec.parse({ ...smallest, account: { roleArn: tenantRole, externalId: 'chosen-by-the-tenant' } }), options);
    expect(problems).toEqual([{ pointer: '/account/externalId', detail: expect.stringContaining('GET /v1/account-trust') as unknown }]);
  });

  it("refuses a role in Kiln's own account, and takes one in another", () => {
    expect(problemsIn({ account: { roleArn: `arn:aws:iam::${kilnAccountId}:role/kiln-provisioner` } })).toEqual(['/account/roleArn']);
    expect(problemsIn({ account: { roleArn: tenantRole } })).toEqual([]);
  });

  it('takes a KMS key only in the account the cluster is built in: the role’s, else Kiln’s', () => {
    expect(problemsIn({ ...kmsOrder(keyIn('333344445555')), account: { roleArn: tenantRole } })).toEqual([]);
    expect(problemsIn({ ...kmsOrder(keyIn('999988887777')), account: { roleArn: tenantRole } })).toEqual(['/encryption/atRest/kmsKeyArn']);
    expect(problemsIn({ ...kmsOrder(keyIn('333344445555')) })).toEqual(['/encryption/atRest/kmsKeyArn']);
    expect(problemsIn({ ...kmsOrder(keyIn(kilnAccountId)) })).toEqual([]);
  });

  it("never names Kiln's account in what it tells the tenant", () => {
    const problems = orderProblems(ClusterSpec.parse({ ...smallest, ...kmsOrder(keyIn('333344445555')) }), options);
    expect(problems.map((problem) => problem.detail).join(' ')).not.toContain(kilnAccountId);
  });
});
