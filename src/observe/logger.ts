/**
 * Structured logs: pino (JSON lines, asynchronous-friendly, the fastest mainstream Node logger;
 * Fastify uses it too, so gateway and runtime logs share one format).
 */
import { pino, type Logger, type LoggerOptions, type DestinationStream } from 'pino';

export type { Logger };

export interface LogOptions {
  /** 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'. Default 'info', or $PP_LOG_LEVEL. */
  level?: string;
  /** Bound into every line (`name`). */
  name?: string;
  /** Where lines go; stdout by default. */
  destination?: DestinationStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  const opts: LoggerOptions = { level: options.level ?? process.env.PP_LOG_LEVEL ?? 'info', base: { pid: process.pid } };
  if (options.name !== undefined) opts.name = options.name;
  return options.destination === undefined ? pino(opts) : pino(opts, options.destination);
}

/** A logger that writes nothing (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
