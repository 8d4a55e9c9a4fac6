import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';

const REQUIRED = {
  KILN_PROVISION_STATE_MACHINE_ARN: 'a',
  KILN_DEPROVISION_STATE_MACHINE_ARN: 'a',
  KILN_UPDATE_STATE_MACHINE_ARN: 'a',
  KILN_ROTATE_ENCRYPTION_KEY_STATE_MACHINE_ARN: 'a',
  KILN_REMEDIATE_NODE_STATE_MACHINE_ARN: 'a',
  KILN_SEALING_KEY_ID: 'k',
  KILN_ACCOUNT_ID: '000000000000',
};

describe("Kiln's egress addresses in its configuration", () => {
  it('are the comma-separated CIDRs of KILN_EGRESS_CIDRS (as sst.config.ts writes the NAT addresses), none when unset', () => {
    expect(loadConfig({ ...REQUIRED, KILN_EGRESS_CIDRS: '198.51.100.7/32, 198.51.100.8/32' }).KILN_EGRESS_CIDRS).toEqual(['198.51.100.7/32', '198.51.100.8/32']);
    expect(loadConfig(REQUIRED).KILN_EGRESS_CIDRS).toEqual([]);
  });

  it('refuses what is not an IPv4 CIDR, naming the variable', () => {
    expect(() => loadConfig({ ...REQUIRED, KILN_EGRESS_CIDRS: '198.51.100.7' })).toThrow(/KILN_EGRESS_CIDRS/);
  });
});

describe("the KMS plugin's image in Kiln's configuration", () => {
  const built = `123456789012.dkr.ecr.eu-central-1.amazonaws.com/aws-encryption-provider:v1.33.0@sha256:${'0f'.repeat(32)}`;

  it('is an image reference pinned by digest, or absent', () => {
    expect(loadConfig({ ...REQUIRED, KILN_KMS_PLUGIN_IMAGE: built }).KILN_KMS_PLUGIN_IMAGE).toBe(built);
    expect(loadConfig(REQUIRED).KILN_KMS_PLUGIN_IMAGE).toBeUndefined();
  });

  it('refuses a reference by tag alone, naming the variable', () => {
    expect(() => loadConfig({ ...REQUIRED, KILN_KMS_PLUGIN_IMAGE: 'registry.k8s.io/aws-encryption-provider/aws-encryption-provider:v1.33.0' })).toThrow(/KILN_KMS_PLUGIN_IMAGE: must be an image reference pinned by digest/);
  });
});

describe('the ports a webhook URL may name', () => {
  it("are https's own unless the operator lists others", () => {
    expect(loadConfig(REQUIRED).KILN_WEBHOOK_PORTS).toEqual([443]);
    expect(loadConfig({ ...REQUIRED, KILN_WEBHOOK_PORTS: '443, 8443' }).KILN_WEBHOOK_PORTS).toEqual([443, 8443]);
    expect(() => loadConfig({ ...REQUIRED, KILN_WEBHOOK_PORTS: '443,https' })).toThrow(/KILN_WEBHOOK_PORTS/);
  });
});
