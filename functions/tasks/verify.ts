import { verifyStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => verifyStep(services, event);
