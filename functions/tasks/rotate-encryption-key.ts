import { rotateEncryptionKeyStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => rotateEncryptionKeyStep(services, event);
