/** Observability: structured logs (pino) and Prometheus metrics. */
export { createLogger, silentLogger } from './logger.js';
export type { Logger, LogOptions } from './logger.js';
export {
  MetricsRegistry, Counter, CounterSeries, Histogram, HistogramSeries, CallbackGauge, DEFAULT_LATENCY_BUCKETS_MS, PROMETHEUS_CONTENT_TYPE,
} from './metrics.js';
export { Hdr, parseHgrm } from './hdr.js';
export type { HdrOptions, HgrmRow, ParsedHgrm } from './hdr.js';
