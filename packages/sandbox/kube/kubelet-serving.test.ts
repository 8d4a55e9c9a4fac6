import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { PLACEHOLDER_ISSUER_CA, renderAddons } from '#addons';
import { ClusterSpec } from '#core';
import { type KubeletCsrApproverValues, debianEc2Hostname, kubeletCsrApproverVerdict, kubeletServingRequest, vpcResolver } from './kubelet-serving.ts';

/** The values Kiln gives the kubelet-csr-approver chart for an order. */
function approverValues(region: string, vpcCidr: string): KubeletCsrApproverValues {
  const spec = ClusterSpec.parse({ name: 'csr', region, network: { vpcCidr }, nodePools: [{ name: 'general', size: 1 }] });
  const chart = renderAddons('cls_csr', spec, { issuerCa: PLACEHOLDER_ISSUER_CA })
    .flatMap((addon) => addon.objects)
    .find((object) => object.kind === 'HelmChart' && object.metadata.name === 'kubelet-csr-approver');
  return parse((chart?.spec as { valuesContent: string }).valuesContent) as KubeletCsrApproverValues;
}

describe('kubelet serving certificates of Debian machines on EC2', () => {
  it.each([
    ['eu-central-1', '10.30.0.0/16', '10.30.1.23'],
    ['us-east-1', '10.0.0.0/16', '10.0.128.7'],
  ])('are approved in %s for the name and address the kubelet really requests', (region, vpcCidr, ip) => {
    const request = kubeletServingRequest(debianEc2Hostname(ip), ip);
    expect(request).toMatchObject({ username: `system:node:ip-${ip.replaceAll('.', '-')}`, dnsNames: [`ip-${ip.replaceAll('.', '-')}`] });
    expect(kubeletCsrApproverVerdict(approverValues(region, vpcCidr), request, vpcResolver(region, [ip]))).toEqual({ approved: true });
  });

  it('are denied for a name that is not an EC2 instance of the VPC, another node or an address outside the VPC', () => {
    const values = approverValues('eu-central-1', '10.30.0.0/16');
    const resolve = vpcResolver('eu-central-1', ['10.30.1.23', '10.30.2.40']);
    const own = kubeletServingRequest(debianEc2Hostname('10.30.1.23'), '10.30.1.23');
    const denied = (request: typeof own) => kubeletCsrApproverVerdict(values, request, resolve).approved;
    // Another node's address, a name that is no instance, an extra name, a name another node holds, an address outside the VPC.
    expect(denied({ ...own, ipAddresses: ['10.30.2.40'] })).toBe(false);
    expect(denied(kubeletServingRequest('api', '10.30.1.23'))).toBe(false);
    expect(denied({ ...own, dnsNames: [...own.dnsNames, 'ip-10-30-1-23.example.com'] })).toBe(false);
    expect(denied({ ...own, dnsNames: ['ip-10-30-2-40'] })).toBe(false);
    expect(denied({ ...own, ipAddresses: ['192.168.1.1'] })).toBe(false);
    expect(denied({ ...own, username: 'system:serviceaccount:default:builder', commonName: 'system:serviceaccount:default:builder' })).toBe(false);
  });
});
