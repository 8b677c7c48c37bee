import type { Clock } from '../../src/resilience/index.js';

/** A clock tests move by hand. */
export class FakeClock implements Clock {
  constructor(public ms = 0) {}
  now(): number {
    return this.ms;
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}
