export { AutomationDriver, DEFAULT_PROJECT_NAME, type AutomationDriverOptions } from './automation-driver.ts';
export {
  API_PORT,
  CILIUM_HEALTH_PORT,
  CLUSTER_TAG,
  ETCD_PORTS,
  KUBELET_PORT,
  SSH_PORT,
  SSM_AGENT_ACTIONS,
  TENANT_TAG,
  VXLAN_PORT,
  WIREGUARD_PORT,
  clusterProgram,
  resourcePrefix,
  type ClusterProgramOutputs,
} from './cluster-program.ts';
export { INFRASTRUCTURE_STEP, stackName, type ClusterRef, type InfrastructureDriver } from './driver.ts';
export { engineStepError } from './engine-errors.ts';
export { InfrastructureOutputs } from './outputs.ts';
export { ClusterProgramInput } from './program-input.ts';
export { MAX_AVAILABILITY_ZONES, planSubnets, type SubnetPlan } from './subnets.ts';
