/**
 * Partition benchmark: balance, movement and lookup throughput of every placement strategy on
 * 1,000,000 string keys ("user:<n>") over 10 and 100 shards, against the npm package `hashring`
 * (ketama, MD5, 160 points a server) on the same keys at 100 shards.
 *
 *   npm run bench -- partition [--keys=1000000] [--lookup-keys=200000] [--runs=5]
 *
 * Prints tables, returns the result object (bench/run.ts prints it as the last JSON line).
 *
 * Throughput is string-key lookups per second (hash32 + placement, i.e. `shardForKey`), the median
 * of `runs` timed passes over `lookup-keys` distinct keys after one warm-up pass. hashring keeps an
 * LRU cache of 5,000 results keyed by the key string; every pass walks 200,000 DISTINCT keys in
 * the same order, so a key's reuse distance (200,000) is far above the cache size and the cache
 * never serves a lookup (checked below: its size never exceeds 5,000). The peer is timed over the
 * same keys with 3 passes: at ~100k lookups/s a pass takes ~2 s on the 2-core machine.
 */
import { createRequire } from 'node:module';
import {
  BoundedLoadAssigner,
  BoundedLoadPlacement,
  STRATEGY_NAMES,
  coefficientOfVariationPct,
  createPlacement,
  hashKeys,
  keysPerShard,
  maxOverMean,
  partitionReport,
  shardNames,
  type Placement,
  type StrategyName,
} from '../src/partition/index.js';
import { formatTable } from '../src/util/index.js';

interface HashRingLike {
  get(key: string): string;
  readonly cache?: { readonly size?: number };
}
type HashRingCtor = new (servers: string[]) => HashRingLike;

const require = createRequire(import.meta.url);

function intArg(args: string[], name: string, fallback: number, max: number): number {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  if (a === undefined) return fallback;
  const v = Number(a.slice(name.length + 3));
  if (!Number.isInteger(v) || v < 1 || v > max) throw new Error(`--${name} must be an integer in [1, ${max}]`);
  return v;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >>> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Lookups per second of `lookup` over `keys`: one warm-up pass, then the median of `runs`. */
function throughput(keys: readonly string[], runs: number, lookup: (key: string) => string): number {
  let sink = 0;
  for (let i = 0; i < keys.length; i++) sink += lookup(keys[i]!).length;
  const rates: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < keys.length; i++) sink += lookup(keys[i]!).length;
    const ns = Number(process.hrtime.bigint() - t0);
    rates.push(keys.length / (ns / 1e9));
  }
  // The sink keeps the loop from being optimised away; it is never zero (names are non-empty).
  if (sink === 0) throw new Error('unreachable: empty shard names');
  return median(rates);
}

const round = (x: number, digits = 3): number => Number(x.toFixed(digits));

export default async function main(args: string[]): Promise<Record<string, unknown>> {
  const keyCount = intArg(args, 'keys', 1_000_000, 20_000_000);
  const lookupKeyCount = Math.min(keyCount, intArg(args, 'lookup-keys', 200_000, 20_000_000));
  const runs = intArg(args, 'runs', 5, 50);
  const started = Date.now();

  const keys = Array.from({ length: keyCount }, (_, i) => `user:${i}`);
  const lookupKeys = keys.slice(0, lookupKeyCount);
  const t0 = performance.now();
  const hashes = hashKeys(keys);
  const hashMs = performance.now() - t0;

  // ---- balance and movement -----------------------------------------------------------------
  const t1 = performance.now();
  const rows = partitionReport({ hashes, shardCounts: [10, 100] });
  const reportMs = performance.now() - t1;
  process.stdout.write(`\npartition quality: ${keyCount} keys, moved = share of keys that change shard when shard N+1 is added\n`);
  process.stdout.write(
    `${formatTable(
      rows.map((r) => ({
        strategy: r.strategy,
        shards: r.shards,
        'cv %': r.cvPct,
        'max/mean': r.maxOverMean,
        'moved %': r.movedShare * 100,
        'moved/ideal': r.movedOverIdeal,
      })),
    )}\n`,
  );
  process.stdout.write(`(hashing ${keyCount} keys: ${hashMs.toFixed(0)} ms; report: ${reportMs.toFixed(0)} ms)\n`);

  const at = (n: number, field: 'cvPct' | 'movedOverIdeal'): Record<StrategyName, number> => {
    const out = {} as Record<StrategyName, number>;
    for (const r of rows) if (r.shards === n) out[r.strategy] = round(r[field]);
    return out;
  };

  // ---- bounded loads in detail --------------------------------------------------------------
  const names100 = shardNames(100);
  const bounded = new BoundedLoadPlacement(names100);
  const slotMaxOverMean = maxOverMean(bounded.slotLoads());
  const boundedKeys = keysPerShard(bounded, hashes);
  const assigner = new BoundedLoadAssigner(names100, { epsilon: bounded.epsilon });
  for (let i = 0; i < hashes.length; i++) assigner.assign(hashes[i]!);
  const assignLoads = Array.from({ length: 100 }, (_, i) => assigner.loadOf(i));
  const boundedRow = {
    epsilon: bounded.epsilon,
    'slots/shard cap': bounded.capacity,
    'slot max/mean': slotMaxOverMean,
    'key max/mean': maxOverMean(boundedKeys),
    'key cv %': coefficientOfVariationPct(boundedKeys),
    'assign max/mean': maxOverMean(assignLoads),
    'assign cv %': coefficientOfVariationPct(assignLoads),
  };
  process.stdout.write(`\nbounded loads at 100 shards (placement over ${bounded.slotCount} slots; assigner over the ${keyCount} keys)\n`);
  process.stdout.write(`${formatTable([boundedRow])}\n`);

  // ---- throughput -----------------------------------------------------------------------------
  const ours: Record<string, number> = {};
  const placements = new Map<StrategyName, Placement>();
  for (const s of STRATEGY_NAMES) placements.set(s, createPlacement(s, names100));
  for (const s of STRATEGY_NAMES) {
    const p = placements.get(s)!;
    ours[s] = Math.round(throughput(lookupKeys, runs, (k) => p.shardForKey(k)));
  }

  const HashRing = require('hashring') as HashRingCtor;
  const ring = new HashRing(names100);
  const peerRuns = Math.min(runs, 3);
  const peerValue = Math.round(throughput(lookupKeys, peerRuns, (k) => ring.get(k)));
  // hashring's LRU (simple-lru-cache) counts its entries in `cache.size`: check it stayed bounded
  // at 5,000, far below the distinct keys one pass walks, so no pass can be served from it.
  const peerCacheSize = ring.cache?.size;

  // Peer balance and movement at 100 shards, on the lookup keys (hashring is ~100x slower, so not
  // the full million): its 160 points per server give a CV of several percent.
  const peerCounts = new Map<string, number>();
  const ring101 = new HashRing(shardNames(101));
  let peerMoved = 0;
  for (const k of lookupKeys) {
    const a = ring.get(k);
    peerCounts.set(a, (peerCounts.get(a) ?? 0) + 1);
    if (ring101.get(k) !== a) peerMoved++;
  }
  const peerCv = coefficientOfVariationPct([...names100].map((n) => peerCounts.get(n) ?? 0));
  const peerMovedOverIdeal = (peerMoved / lookupKeys.length) * 101;

  const tput = [
    ...STRATEGY_NAMES.map((s) => ({ implementation: `powerplant ${s}`, 'lookups/s': ours[s]!, 'vs hashring': ours[s]! / peerValue })),
    { implementation: 'hashring (ketama)', 'lookups/s': peerValue, 'vs hashring': 1 },
  ];
  process.stdout.write(`\nstring-key lookups at 100 shards (hash + placement; ${lookupKeyCount} distinct keys, median of ${runs} runs, peer ${peerRuns})\n`);
  process.stdout.write(`${formatTable(tput)}\n`);
  process.stdout.write(
    `hashring at 100 shards on ${lookupKeyCount} keys: cv ${peerCv.toFixed(2)} %, moved/ideal ${peerMovedOverIdeal.toFixed(3)}; LRU entries after the runs: ${String(peerCacheSize)}\n`,
  );

  const jump = ours.jump!;
  return {
    bench: 'partition',
    unit: 'lookups/s',
    ours: jump,
    peer: 'hashring',
    peer_value: peerValue,
    ratio: round(jump / peerValue, 2),
    keys: keyCount,
    lookup_keys: lookupKeyCount,
    lookups_per_s_100: ours,
    cv_pct_100: at(100, 'cvPct'),
    cv_pct_10: at(10, 'cvPct'),
    moved_over_ideal: at(100, 'movedOverIdeal'),
    moved_over_ideal_10: at(10, 'movedOverIdeal'),
    bounded_epsilon: bounded.epsilon,
    bounded_max_over_mean: round(slotMaxOverMean, 4),
    bounded_key_max_over_mean: round(maxOverMean(boundedKeys), 4),
    bounded_assign_max_over_mean: round(maxOverMean(assignLoads), 4),
    peer_cv_pct_100: round(peerCv),
    peer_moved_over_ideal: round(peerMovedOverIdeal),
    peer_cache_entries: peerCacheSize ?? null,
    elapsed_s: round((Date.now() - started) / 1000, 1),
  };
}
