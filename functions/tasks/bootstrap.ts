import { bootstrapStep } from '#steps';
import { services } from './services.ts';

export const handler = (event: unknown) => bootstrapStep(services, event);
