import { loadConfig } from '../wiring/config.ts';
import { createStepServices } from '../wiring/step-services.ts';

/** Read once per container; the infrastructure runner also needs its Pulumi settings from it. */
export const config = loadConfig();
/** Built once per Lambda container (module scope), shared by every invocation of a workflow step. */
export const services = createStepServices(config);
