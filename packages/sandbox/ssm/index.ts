export { startSsmService, type MachineCommandHandler, type SsmService, type SsmServiceOptions } from './server.ts';
