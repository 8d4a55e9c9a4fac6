import type { StepServices } from '#steps';
import { loadConfig } from '../wiring/config.ts';
import { createObservability, stepHandler } from '../wiring/observability.ts';
import { createStepServices } from '../wiring/step-services.ts';

/** Read once per container; the infrastructure runner also needs its Pulumi settings from it. */
export const config = loadConfig();
export const observability = createObservability(config);
/** Built once per Lambda container (module scope), shared by every invocation of a workflow step. */
export const services = createStepServices(config, observability);

/** A step's handler: its log lines carry the invocation's context and the operation's ids (the request id among them). */
export const step = <R>(run: (services: StepServices, event: unknown) => Promise<R>) => stepHandler(services, observability, run);
