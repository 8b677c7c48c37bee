/** The embedded segmented-log engine (`file:<dir>`); engine.ts gives the overview. */
export { LogEngine, LOG_DEFAULTS, type LogOptions } from './engine.js';
export { LogGroupStore } from './groups.js';
