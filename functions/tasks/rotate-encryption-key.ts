import { rotateEncryptionKeyStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => rotateEncryptionKeyStep(services, event);
