import { addonsStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => addonsStep(services, event);
