import { planStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => planStep(services, event);
