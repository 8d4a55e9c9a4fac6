export { roleTrustOf, startStsService, type AssumeRoleCall, type RoleTrust, type StsService } from './server.ts';
