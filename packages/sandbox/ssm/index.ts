export { startSsmService, type MachineCommandHandler, type SentCommand, type SsmService, type SsmServiceOptions } from './server.ts';
