import { verifyStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => verifyStep(services, event);
