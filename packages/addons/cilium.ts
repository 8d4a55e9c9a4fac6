import type { ClusterSpec } from '#core';
import { CHARTS, helmChart } from './charts.ts';
import type { Manifest } from './kube.ts';

const PULL_BY_DIGEST = { useDigest: true } as const;

export interface ApiServerAddress {
  host: string;
  port: number;
}

/**
 * Cilium values for the order. Transparent encryption is WireGuard, node
 * traffic included. Strict mode works both ways: egress drops unencrypted
 * pod-to-pod packets inside the pod CIDR before they leave a node, ingress
 * drops unencrypted overlay packets before they reach a local pod (1.19 added
 * ingress and the `egress`/`ingress` keys; 1.20 removed the flat
 * `strictMode.enabled/cidr` keys and ignores them silently, hence the test).
 * Since 1.15 WireGuard in tunnel mode always encapsulates first, so the old
 * `encryption.wireguard.encapsulate` (GHSA-v6q2-4qr3-5cw6) is gone.
 */
export function ciliumValues(spec: ClusterSpec, apiServer?: ApiServerAddress): Record<string, unknown> {
  const { network } = spec;
  const transparent = spec.encryption.transparent;
  return {
    // The chart names each image's digest beside its tag and pulls by it when useDigest is on, its default
    // (cilium/charts@009b5e95 cilium-1.20.0.tgz values.yaml; templates/_helpers.tpl "cilium.image" appends
    // `@<digest>` only then); said here so no later values turn it off. Kiln's images are the chart's own.
    image: PULL_BY_DIGEST,
    envoy: { image: PULL_BY_DIGEST },
    certgen: { image: PULL_BY_DIGEST },
    // The order rules refuse native routing (a VPC does not route pod addresses it does not know).
    routingMode: 'tunnel',
    tunnelProtocol: 'vxlan',
    // kube-proxy is replaced, so the agent must reach the API server without the kubernetes Service.
    kubeProxyReplacement: true,
    ...(apiServer === undefined ? {} : { k8sServiceHost: apiServer.host, k8sServicePort: apiServer.port }),
    ipam: { mode: 'cluster-pool', operator: { clusterPoolIPv4PodCIDRList: [network.podCidr], clusterPoolIPv4MaskSize: 24 } },
    encryption: transparent.enabled
      ? {
          enabled: true,
          type: 'wireguard',
          nodeEncryption: transparent.nodeEncryption,
          strictMode: {
            egress: {
              enabled: transparent.strictMode,
              cidr: network.podCidr,
              // With VXLAN on AWS, nodes hold addresses from the pod CIDR (cilium_host, health checks); without this,
              // strict mode drops pod-to-node traffic.
              allowRemoteNodeIdentities: true,
            },
            ingress: { enabled: transparent.strictMode },
          },
        }
      : { enabled: false },
    hubble: {
      enabled: true,
      // cert-manager is not there yet when Cilium bootstraps, so Hubble's certificates come from the chart's CronJob.
      tls: { enabled: true, auto: { enabled: true, method: 'cronJob', certValidityDuration: 365, schedule: '0 0 1 */4 *' } },
      relay: { enabled: true, image: PULL_BY_DIGEST },
    },
    operator: { replicas: 2, image: PULL_BY_DIGEST },
  };
}

export function ciliumObjects(spec: ClusterSpec, apiServer?: ApiServerAddress): Manifest[] {
  return [
    helmChart('cilium', CHARTS.cilium, {
      targetNamespace: 'kube-system',
      // No pod network exists yet: the install Job must run on the host network.
      bootstrap: true,
      values: ciliumValues(spec, apiServer),
      readiness: {
        crds: [],
        workloads: [
          { kind: 'DaemonSet', namespace: 'kube-system', name: 'cilium' },
          { kind: 'Deployment', namespace: 'kube-system', name: 'cilium-operator' },
        ],
      },
    }),
  ];
}
