import { planStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => planStep(services, event);
