import { describe, expect, it } from 'vitest';
import { createCloudMocks } from './mocks.ts';

describe('the sandbox cloud mocks', () => {
  it('give every Elastic IP of a run an address of its own', async () => {
    const { mocks } = createCloudMocks({ clusterId: 'cls_1', region: 'eu-central-1', accountId: '123456789012', apiHost: 'api.sandbox.test' });
    const addresses = await Promise.all(
      Array.from({ length: 254 }, async (_, index) => {
        const created = await mocks.newResource({ type: 'aws:ec2/eip:Eip', name: `nat-${index}`, inputs: { domain: 'vpc' }, custom: true });
        return (created.state as { publicIp: string }).publicIp;
      }),
    );
    expect(new Set(addresses).size).toBe(254);
  });
});
