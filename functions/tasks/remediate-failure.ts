import { recordRemediationFailureStep } from '#health';
import { services } from './remediation-services.ts';

export const handler = (event: unknown) => recordRemediationFailureStep(services, event);
