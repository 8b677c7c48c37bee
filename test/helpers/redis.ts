/** Redis clean-up for tests: each suite writes under its own key prefix and removes it after. */
import { Redis } from 'ioredis';

/** Deletes every key starting with `prefix` (SCAN in batches, so it never blocks Redis). */
export async function deleteKeysWithPrefix(url: string, prefix: string): Promise<void> {
  const r = new Redis(url);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    await r.quit();
  }
}
