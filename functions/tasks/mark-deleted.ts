import { markDeletedStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => markDeletedStep(services, event);
