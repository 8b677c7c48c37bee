/**
 * Value encoding shared by the kv layer and the change feed: msgpack (msgpackr), plain maps (no
 * msgpackr "records" extension) so other languages can read feed documents and kv values. Used by
 * the kv/table layer (which hands engines the encoded feed documents) and the feed reader; the
 * engines never import it. The record's key format is `keyJson` in engines/base.ts.
 */
import { Packr } from 'msgpackr';
import type { SqlValue, TableDef } from './schema.js';
import { decodeValue } from './schema.js';
import type { RawRow } from './engines/base.js';

const packr = new Packr({ useRecords: false, moreTypes: false });

export function pack(value: unknown): Buffer {
  return packr.pack(value);
}

export function unpack(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}

/** The logical row of a raw engine row (booleans, json decoded; NULL columns omitted). */
export function decodeRow(def: TableDef, raw: RawRow): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const cols = def.columns;
  for (let i = 0; i < cols.length; i++) {
    const c = cols[i]!;
    const v = decodeValue(c, raw[c.name]);
    if (v !== undefined) out[c.name] = v;
  }
  return out;
}

/** The change-feed document of a written row: kv -> the msgpack value as stored; table -> msgpack of the row. */
export function feedDoc(def: TableDef, raw: RawRow): Buffer {
  if (def.kind === 'kv') return raw.v as Buffer;
  return packr.pack(decodeRow(def, raw));
}

/**
 * The change-feed document of a row written with every column given (insert, upsert, CAS replace):
 * the same bytes `feedDoc` makes from the row the engine returns, computed before the write (once,
 * by the table layer) so the PostgreSQL engine can send the record together with the write.
 */
export function feedDocOfValues(def: TableDef, values: readonly SqlValue[]): Buffer {
  if (def.kind === 'kv') return values[1] as Buffer;
  const raw: RawRow = {};
  const cols = def.columns;
  for (let i = 0; i < cols.length; i++) raw[cols[i]!.name] = values[i];
  return packr.pack(decodeRow(def, raw));
}
