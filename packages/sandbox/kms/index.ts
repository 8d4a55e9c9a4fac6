export { type KmsService, type KmsServiceOptions, startKmsService } from './server.ts';
