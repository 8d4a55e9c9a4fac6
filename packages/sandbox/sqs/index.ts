export { startSqsService, type SqsQueueOptions, type SqsService } from './server.ts';
export { runEventSource, type EventSourceOptions, type SqsBatchHandler } from './event-source.ts';
