import { addonsStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => addonsStep(services, event);
