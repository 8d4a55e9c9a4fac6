export * from './user-data.ts';
export * from './ssh-key.ts';
