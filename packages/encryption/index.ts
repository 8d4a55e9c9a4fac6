export { KmsSealer, type SecretSealer } from './sealer.ts';
export { applyResult, CONFIG_VERSIONS, keysAt, nextAction, nextKeyId, ROTATION_PHASES, RotationResultMismatch, startRotation, type ConfigVersion, type MachineRotationState, type RotationAction, type RotationPhase, type RotationResult, type RotationState, type SecretRewriteProgress, type StartRotationInput } from './rotation.ts';
export { DEFAULT_REWRITE_PAGE_SIZE, rewriteSecretsPage, type SecretRewritePage } from './rewrite-secrets.ts';
