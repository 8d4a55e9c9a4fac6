export { listenerSources } from './listener-sources.ts';
export { startNetworkLoadBalancer, type NetworkLoadBalancerOptions, type RefusedConnection, type SandboxNetworkLoadBalancer } from './network-load-balancer.ts';
