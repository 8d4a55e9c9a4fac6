export { startStsService, type AssumeRoleCall, type StsService } from './server.ts';
