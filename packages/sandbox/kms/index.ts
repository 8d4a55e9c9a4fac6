export { type KmsService, type KmsServiceOptions, startKmsService } from './server.ts';
export { kmsV2Plugin } from './keys.ts';
