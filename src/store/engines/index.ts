/**
 * Resolves engine URLs to shard engines (Moleculer-style: the config string picks the family):
 *   sqlite:<dir>          -> SQLite, files <dir>/shard-<i>.db (the embedded default: sqlite:./data)
 *   postgres://...        -> PostgreSQL (also postgresql://); `?schema=<name>` picks the schema
 * One URL with `shards: n` gives n shards (SQLite: n files; PostgreSQL: schemas <schema>_<i>).
 * Several URLs give one shard each. Shards are named s0, s1, ... in URL order; partitioners
 * (range, list) refer to those names.
 */
import { join } from 'node:path';
import { requireArg } from '../../errors/index.js';
import type { ShardEngine } from './base.js';
import { PostgresShard, parsePgUrl, type PostgresOptions } from './postgres.js';
import { SqliteShard, type SqliteOptions } from './sqlite.js';

export type { ShardEngine, WriteOp, WriteRequest, OpOutcome, RequestResult, RawRow, ScanPlan, RangeCond, FeedRow, Migration, OpKind } from './base.js';
export { SqliteShard, type SqliteOptions } from './sqlite.js';
export { PostgresShard, type PostgresOptions, type PostgresWriteStats } from './postgres.js';

/** Upper bound on shards one store opens (each is a file or a connection pool). */
export const SHARDS_MAX = 256;

export interface EngineOptions {
  readonly shards?: number;
  readonly sqlite?: SqliteOptions;
  readonly postgres?: PostgresOptions;
}

export function shardName(i: number): string {
  return `s${i}`;
}

export function createEngines(engine: string | readonly string[], options: EngineOptions = {}): ShardEngine[] {
  const urls = typeof engine === 'string' ? [engine] : engine;
  requireArg(Array.isArray(urls) && urls.length > 0 && urls.length <= SHARDS_MAX, 'engine', `must be a URL or 1..${SHARDS_MAX} URLs`);
  const n = options.shards ?? urls.length;
  requireArg(Number.isInteger(n) && n >= 1 && n <= SHARDS_MAX, 'shards', `must be an integer in [1, ${SHARDS_MAX}]`);
  requireArg(urls.length === 1 || n === urls.length, 'shards', 'with several URLs, each URL is one shard (omit shards)');
  const out: ShardEngine[] = [];
  for (let i = 0; i < n; i++) {
    const url = urls.length === 1 ? urls[0]! : urls[i]!;
    requireArg(typeof url === 'string', `engine[${i}]`, 'must be a string');
    if (url.startsWith('sqlite:')) {
      const dir = url.slice('sqlite:'.length);
      requireArg(dir.length > 0, 'engine', 'sqlite:<dir> needs a directory');
      out.push(new SqliteShard(shardName(i), join(dir, `shard-${urls.length === 1 ? i : 0}.db`), options.sqlite));
    } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
      let u = url;
      if (urls.length === 1 && n > 1) {
        parsePgUrl(url); // validates the URL and the schema name before deriving per-shard schemas
        const parsed = new URL(url);
        parsed.searchParams.set('schema', `${parsed.searchParams.get('schema') ?? 'powerplant'}_${i}`);
        u = parsed.href;
      }
      out.push(new PostgresShard(shardName(i), u, options.postgres));
    } else {
      requireArg(false, 'engine', `unknown engine URL "${url.replace(/\/\/[^@]*@/, '//***@')}" (sqlite:<dir> or postgres://...)`);
    }
  }
  return out;
}
