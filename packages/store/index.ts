export * from './records.ts';
export * from './store.ts';
export { TABLE_KEYS, keys, tableDefinition } from './table.ts';
