export { ApiKeyRecord, MachineUsageRecord, UsageHourRecord, UsageLedgerRecord, WebhookDeliveryRecord, WebhookEndpointRecord, ClusterRecord, IdempotencyRecord, NodeHealthRecord, OperationRecord, StepRecord, StoredResponse, TenantRecord, type Page } from './records.ts';
export { createStore, KilnStore, VersionConflictError, type ActiveOperation, type IdempotencyClaim, type KeyHolder, type WriteOutcome } from './store.ts';
export { TABLE_KEYS, keys, tableDefinition } from './table.ts';
export { InfrastructureSlots, type SlotWaiter } from './infrastructure-slots.ts';
