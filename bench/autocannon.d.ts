// Minimal typing for the part of autocannon the gateway benchmark uses (the package ships no
// types and @types/autocannon is not installed).
declare module 'autocannon' {
  interface Options {
    url: string;
    connections?: number;
    pipelining?: number;
    duration?: number;
    /** Requests to send in total (instead of a duration). */
    amount?: number;
  }
  interface Histogram {
    average: number;
    p99: number;
  }
  interface Result {
    /** `total`: requests completed within the duration. */
    requests: Histogram & { total: number };
    latency: Histogram;
    errors: number;
    non2xx: number;
  }
  function autocannon(options: Options): Promise<Result>;
  export default autocannon;
}
