/** Least recently used: one list, a hit moves the slot to the recent end, eviction takes the oldest. */
import { invariant } from '../../errors/index.js';
import { SlotLists, type Policy } from './base.js';

export class LruPolicy implements Policy {
  readonly name = 'lru' as const;
  readonly usesHash = false;
  private readonly lists: SlotLists;
  private readonly entriesMax: number;
  size = 0;

  constructor(entriesMax: number, capacity: number) {
    this.entriesMax = entriesMax;
    this.lists = new SlotLists(capacity, 1);
  }

  insert(slot: number): number {
    this.lists.append(0, slot);
    this.size++;
    if (this.size <= this.entriesMax) return -1;
    return this.evictOne();
  }

  hit(slot: number): void {
    this.lists.moveToEnd(0, slot);
  }

  hits(slots: Int32Array, n: number): void {
    for (let i = 0; i < n; i++) this.lists.moveToEnd(0, slots[i]!);
  }

  miss(): void {}

  remove(slot: number): void {
    invariant(this.lists.linked(slot), 'lru: removed slot is resident');
    this.lists.unlink(slot);
    this.size--;
  }

  evictOne(): number {
    const victim = this.lists.oldest(0);
    if (victim < 0) return -1;
    this.lists.unlink(victim);
    this.size--;
    return victim;
  }

  clear(): void {
    this.lists.reset(1);
    this.size = 0;
  }
}
