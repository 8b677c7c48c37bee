/**
 * Consumer groups on the embedded engine: leases in memory, committed offsets in a small file per
 * group (`groups/<topic>/<group>.json`).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ppError } from '../../../errors/index.js';
import type { Claimed, CommitEntry, GroupStore, StoredAttempts } from '../base.js';
import { fsyncDir } from './fsync.js';

interface GroupState {
  readonly members: Map<string, number>;
  readonly owners: Map<number, { member: string; expiresAtMs: number }>;
  committed: (number | undefined)[];
  attempts: StoredAttempts[];
  loaded: boolean;
  writing: Promise<void>;
  dirty: boolean;
}

/**
 * Group coordination for the embedded engine. The log directory is open in one process (LOCK),
 * so every member of a group is in this process: leases live in memory. Committed offsets are
 * durable: each commit that changed one rewrites the group's file (temp file, fsync, rename).
 */
export class LogGroupStore implements GroupStore {
  readonly #dir: string;
  readonly #groups = new Map<string, GroupState>();

  constructor(dir: string) {
    this.#dir = dir;
  }

  #path(topic: string, group: string): string {
    return join(this.#dir, topic, `${group}.json`);
  }

  #state(topic: string, group: string): GroupState {
    const k = `${topic}\u0000${group}`;
    let g = this.#groups.get(k);
    if (g === undefined) {
      g = { members: new Map(), owners: new Map(), committed: [], attempts: [], loaded: false, writing: Promise.resolve(), dirty: false };
      const path = this.#path(topic, group);
      if (existsSync(path)) {
        const j = JSON.parse(readFileSync(path, 'utf8')) as { committed: (number | null)[]; attempts?: [number, number][][] };
        g.committed = j.committed.map((c) => (c === null ? undefined : c));
        g.attempts = j.attempts ?? [];
      }
      g.loaded = true;
      this.#groups.set(k, g);
    }
    return g;
  }

  async join(topic: string, group: string, member: string, ttlMs: number): Promise<void> {
    this.#state(topic, group).members.set(member, Date.now() + ttlMs);
    return Promise.resolve();
  }

  async leave(topic: string, group: string, member: string): Promise<void> {
    const g = this.#state(topic, group);
    g.members.delete(member);
    for (const [p, o] of g.owners) if (o.member === member) g.owners.delete(p);
    return Promise.resolve();
  }

  async members(topic: string, group: string): Promise<string[]> {
    const g = this.#state(topic, group);
    const now = Date.now();
    for (const [m, exp] of g.members) if (exp < now) g.members.delete(m);
    return Promise.resolve([...g.members.keys()].sort());
  }

  async claim(topic: string, group: string, partition: number, member: string, ttlMs: number): Promise<Claimed | undefined> {
    const g = this.#state(topic, group);
    const now = Date.now();
    const o = g.owners.get(partition);
    if (o !== undefined && o.member !== member && o.expiresAtMs >= now) return undefined;
    g.owners.set(partition, { member, expiresAtMs: now + ttlMs });
    return Promise.resolve({ committed: g.committed[partition], attempts: g.attempts[partition] ?? [] });
  }

  async commit(topic: string, group: string, member: string, ttlMs: number, entries: readonly CommitEntry[]): Promise<number[]> {
    const g = this.#state(topic, group);
    const now = Date.now();
    const lost: number[] = [];
    let changed = false;
    for (const e of entries) {
      const o = g.owners.get(e.partition);
      if (o === undefined || o.member !== member) {
        lost.push(e.partition);
        continue;
      }
      if (e.committed !== undefined && g.committed[e.partition] !== e.committed) {
        g.committed[e.partition] = e.committed;
        changed = true;
      }
      if (e.attempts !== undefined) {
        g.attempts[e.partition] = e.attempts;
        changed = true;
      }
      if (e.release) g.owners.delete(e.partition);
      else o.expiresAtMs = now + ttlMs;
    }
    if (changed) await this.#persist(topic, group, g);
    return lost;
  }

  async committed(topic: string, group: string, partitions: number): Promise<(number | undefined)[]> {
    const g = this.#state(topic, group);
    return Promise.resolve(Array.from({ length: partitions }, (_, i) => g.committed[i]));
  }

  async seek(topic: string, group: string, partition: number, committed: number): Promise<void> {
    const g = this.#state(topic, group);
    const o = g.owners.get(partition);
    if (o !== undefined && o.expiresAtMs >= Date.now()) {
      throw ppError('PP_ERR_CONFLICT', { message: `partition ${partition} of ${topic} is held by a member of group ${group}; stop the group before seeking` });
    }
    g.committed[partition] = committed;
    g.attempts[partition] = [];
    await this.#persist(topic, group, g);
  }

  /** Serialised per group; the snapshot written is the latest state at write time. */
  #persist(topic: string, group: string, g: GroupState): Promise<void> {
    g.dirty = true;
    g.writing = g.writing.then(async () => {
      if (!g.dirty) return;
      g.dirty = false;
      const path = this.#path(topic, group);
      const dir = join(this.#dir, topic);
      if (mkdirSync(dir, { recursive: true }) !== undefined) fsyncDir(this.#dir);
      const tmp = `${path}.tmp`;
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(JSON.stringify({ committed: g.committed.map((c) => c ?? null), attempts: Array.from({ length: g.committed.length }, (_, p) => g.attempts[p] ?? []) }));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      // Without this a power loss could bring back the previous offsets (more redelivery) or,
      // for a new group, none (it would restart from `from`).
      fsyncDir(dir);
    });
    return g.writing;
  }

  async flushAll(): Promise<void> {
    await Promise.allSettled([...this.#groups.values()].map((g) => g.writing));
  }

  async dropTopic(topic: string): Promise<void> {
    for (const k of [...this.#groups.keys()]) if (k.startsWith(`${topic}\u0000`)) this.#groups.delete(k);
    await rm(join(this.#dir, topic), { recursive: true, force: true });
  }
}
