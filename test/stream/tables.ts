import type { Store } from '../../src/store/index.js';
import { DeadRow, StateRow } from '../../src/stream/index.js';

/** The job's tables, opened the way the job opens them (same specs). */
export async function openJobTablesForTest(store: Store, job: string) {
  const [state, dead] = await Promise.all([
    store.table(`pp_stream_${job}`, { schema: StateRow, primaryKey: ['part', 'key'], partitionKey: ['part'] }),
    store.table(`pp_stream_${job}_dead`, { schema: DeadRow, primaryKey: ['part', 'offset', 'seq'], partitionKey: ['part'] }),
  ]);
  return { state, dead };
}
