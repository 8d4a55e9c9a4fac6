export { createCloudMocks, type MockCloudContext, type RecordedResource } from './mocks.ts';
export {
  SANDBOX_ACCOUNT_ID,
  machineRoleBoundaryArn,
  SandboxCloud,
  type ProvisionedCluster,
  type RunTiming,
  type SandboxCloudOptions,
} from './sandbox-cloud.ts';
