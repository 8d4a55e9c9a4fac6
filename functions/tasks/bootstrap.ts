import { bootstrapStep } from '#lifecycle';
import { services } from '../services.ts';

export const handler = (event: unknown) => bootstrapStep(services, event);
