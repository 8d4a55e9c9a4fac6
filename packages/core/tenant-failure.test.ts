import { describe, expect, it } from 'vitest';
import { tenantFailureDetail, withoutInternalIdentifiers } from './tenant-failure.ts';

const RAW_AWS = 'User: arn:aws:sts::000000000000:assumed-role/kiln-steps/fn is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:eu-central-1:000000000000:key/1234abcd';

describe('the failure a tenant reads', () => {
  it('leaves out every ARN and account id, and nothing else', () => {
    expect(withoutInternalIdentifiers(RAW_AWS)).toBe('User: [internal] is not authorized to perform: kms:Decrypt on resource: [internal]');
    expect(withoutInternalIdentifiers('account 123456789012 (role 9)')).toBe('account [internal] (role 9)');
    expect(withoutInternalIdentifiers('nodes cls_01m99 at 10.0.1.12, 1234567890123 bytes')).toBe('nodes cls_01m99 at 10.0.1.12, 1234567890123 bytes');
  });

  it("keeps Kiln's own message, says what to do, and names the reference", () => {
    const detail = tenantFailureDetail({
      operationType: 'update',
      step: 'await-nodes',
      cause: { kind: 'kiln', message: 'The node pools did not reach their size; the key arn:aws:kms:eu-central-1:000000000000:key/1234abcd was refused.' },
      reference: 'req-7',
    });
    expect(detail).toBe(
      'Step await-nodes failed: The node pools did not reach their size; the key [internal] was refused. Apply the change again once the cause is fixed; the steps that finished are not repeated. Reference: req-7.',
    );
  });

  it("never repeats a dependency's words", () => {
    const detail = tenantFailureDetail({ operationType: 'provision', step: 'infrastructure', cause: { kind: 'dependency' }, reference: 'req-8' });
    expect(detail).toMatch(/^Step infrastructure failed: a service it depends on .* did not complete it\. This is usually temporary: .* The cluster is Failed and can be deleted; order it again once the cause is fixed\. Reference: req-8\.$/);
  });
});
