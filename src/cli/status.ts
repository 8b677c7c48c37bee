/**
 * `powerplant status [--url http://127.0.0.1:3000] [--json] [--timeout MS] [--token T]`: asks a running node's
 * gateway for `GET /status` and prints what it says as tables — this node and its health, the
 * nodes it knows (alive or suspect, their services), the services (instances, actions, calls in
 * flight, circuit-breaker states) and, when the application reports them, the store's partitions
 * (shards and their engines, tables with their partitioning and partition keys). `--json` prints
 * the document as received.
 *
 * A gateway may redact locations (shard paths, database URLs) for anyone but an admin, or show
 * its status to admins only: `--token` (or $PP_STATUS_TOKEN) sends an admin's bearer token.
 *
 * The document is read defensively: fields a node does not report print as '-', so a newer or
 * older node still gets a readable answer.
 */
import { formatTable } from '../util/index.js';
import { parseArgs } from './args.js';

export const STATUS_USAGE = `  status     show a running system: nodes, services, instances, partitions, health
             --url URL     a node's gateway (default http://127.0.0.1:3000)
             --json        print the raw JSON of GET <url>/status
             --timeout MS  give up after MS milliseconds (default 5000)
             --token T     send Authorization: Bearer T (a gateway that shows /status whole, or at
                           all, only to admins); default $PP_STATUS_TOKEN, which keeps it out of ps
`;

const STATUS_FLAGS = {
  url: { kind: 'string' },
  json: { kind: 'bool' },
  timeout: { kind: 'int', min: 1, max: 600_000 },
  token: { kind: 'string' },
} as const;

export const DEFAULT_STATUS_URL = 'http://127.0.0.1:3000';
export const DEFAULT_STATUS_TIMEOUT_MS = 5_000;

// ---- the document (GET /status), as far as the CLI reads it --------------------------------------

export interface StatusEndpoint {
  nodeId?: string;
  inFlight?: number;
  breaker?: string;
}
export interface StatusAction {
  name?: string;
  endpoints?: StatusEndpoint[];
}
export interface StatusService {
  name?: string;
  version?: number;
  instances?: string[];
  actions?: StatusAction[];
}
export interface StatusNode {
  nodeId?: string;
  instanceId?: string;
  local?: boolean;
  status?: string;
  state?: string;
  services?: { name?: string; version?: number }[];
}
export interface StatusPartitions {
  shards?: { shard?: string | number; engine?: string; location?: string }[];
  tables?: { name?: string; kind?: string; primaryKey?: unknown; partitioning?: unknown; partitionKey?: unknown; indexes?: unknown }[];
}
export interface StatusDoc {
  node?: {
    nodeId?: string;
    namespace?: string;
    instanceId?: string;
    uptimeMs?: number;
    live?: boolean;
    ready?: boolean;
    state?: string;
    registryNodes?: number;
    inFlight?: number;
  };
  nodes?: StatusNode[];
  services?: StatusService[];
  partitions?: StatusPartitions;
  /** An application using src/tx reports its workflows and transactions here. */
  workflows?: StatusWorkflows;
}

export interface StatusWorkflows {
  counts?: Record<string, number>;
  running?: { id?: string; name?: string; owner?: string; createdMs?: number; updatedMs?: number }[];
  transactions?: { committed?: { none?: number; local?: number; twoPc?: number }; aborts?: number; failed?: number; recovery?: { committed?: number; aborted?: number; skipped?: number } };
}

export interface StatusIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

const defaultIo: StatusIo = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** Runs `powerplant status`; resolves to the exit code (0 answered, 1 nothing usable answered). */
export async function statusCommand(argv: readonly string[], io: StatusIo = defaultIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<number> {
  const { flags } = parseArgs('status', argv, STATUS_FLAGS);
  const token = flags.token ?? (env.PP_STATUS_TOKEN === undefined || env.PP_STATUS_TOKEN === '' ? undefined : env.PP_STATUS_TOKEN);
  const base = (flags.url ?? DEFAULT_STATUS_URL).replace(/\/+$/, '');
  const timeoutMs = flags.timeout ?? DEFAULT_STATUS_TIMEOUT_MS;
  let url: URL;
  try {
    url = new URL(`${base}/status`);
  } catch {
    io.err(`powerplant status: --url ${base} is not a URL (expected e.g. ${DEFAULT_STATUS_URL})\n`);
    return 2;
  }
  const got = await fetchStatus(url, timeoutMs, token);
  if (!got.ok) {
    io.err(`powerplant status: ${got.message}\n`);
    return 1;
  }
  if (flags.json === true) io.out(`${got.text.endsWith('\n') ? got.text : `${got.text}\n`}`);
  else io.out(renderStatus(got.doc, base));
  return 0;
}

type Fetched = { ok: true; text: string; doc: StatusDoc } | { ok: false; message: string };

async function fetchStatus(url: URL, timeoutMs: number, token: string | undefined): Promise<Fetched> {
  const where = url.href;
  let res: Response;
  let text: string;
  try {
    // One deadline for connect, headers and body.
    const signal = AbortSignal.timeout(timeoutMs);
    res = await fetch(url, { signal, headers: { accept: 'application/json', ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) } });
    text = await res.text();
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') return { ok: false, message: `no answer from ${where} within ${timeoutMs} ms` };
    const why = e.cause?.code ?? e.cause?.message ?? String(err);
    return { ok: false, message: `nothing answers at ${where} (${why}). Is a node running there? Start one with "powerplant start <entry>" (npm start runs the shop), or pass --url.` };
  }
  if (res.status !== 200) {
    const hint = res.status === 404 ? ' (this server has no status endpoint: is it a Powerplant gateway?)'
      : res.status === 401 || res.status === 403 ? ` (this gateway shows its status to admins only: pass an admin's token with --token or $PP_STATUS_TOKEN${token === undefined ? '' : '; the one sent was refused'})`
        : '';
    return { ok: false, message: `GET ${where} answered HTTP ${res.status}${hint}: ${text.slice(0, 200)}` };
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not an object');
    return { ok: true, text, doc: doc as StatusDoc };
  } catch {
    return { ok: false, message: `GET ${where} answered something that is not a JSON status document: ${text.slice(0, 200)}` };
  }
}

const dash = (v: unknown): string => (v === undefined || v === null || v === '' ? '-' : String(v));
const yesNo = (v: boolean | undefined): string => (v === undefined ? '-' : v ? 'yes' : 'no');
const arr = <T>(v: T[] | undefined): T[] => (Array.isArray(v) ? v : []);

/** A value from the document as one cell: lists joined, objects compact. */
function describe(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.length === 0 ? '-' : v.map(describe).join(', ');
  return JSON.stringify(v);
}

/** Secondary indexes `{ name: [columns] }` as `name(col, col)`. */
function describeIndexes(v: unknown): string {
  if (Array.isArray(v)) return describe(v);
  if (typeof v !== 'object' || v === null) return describe(v);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length === 0) return '-';
  return entries.map(([name, cols]) => `${name}(${Array.isArray(cols) ? cols.map(String).join(', ') : describe(cols)})`).join(' ');
}

/** `{kind:'hash', epoch, slotCount, owned:{s0: n}}` as `hash: 16384 slots, epoch 1 (s0 8190, s1 8194)`. */
function describePartitioning(v: unknown): string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return describe(v);
  const p = v as { kind?: unknown; epoch?: unknown; slotCount?: unknown; owned?: unknown; shards?: unknown };
  if (p.kind === 'hash') {
    const owned = typeof p.owned === 'object' && p.owned !== null ? Object.entries(p.owned as Record<string, unknown>).map(([s, n]) => `${s} ${String(n)}`).join(', ') : '';
    return `hash: ${dash(p.slotCount)} slots, epoch ${dash(p.epoch)}${owned === '' ? '' : ` (${owned})`}`;
  }
  if (typeof p.kind === 'string') return `${p.kind}${Array.isArray(p.shards) ? ` over ${p.shards.map(String).join(', ')}` : ''}`;
  return describe(v);
}

function formatUptime(ms: number | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/** Counts of each breaker state, in a fixed order: "closed 5, open 1". */
function breakerSummary(endpoints: readonly StatusEndpoint[]): string {
  const counts = new Map<string, number>();
  for (const e of endpoints) counts.set(dash(e.breaker), (counts.get(dash(e.breaker)) ?? 0) + 1);
  const order = ['closed', 'half-open', 'open'];
  const keys = [...counts.keys()].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b));
  return keys.length === 0 ? '-' : keys.map((k) => `${k} ${counts.get(k)!}`).join(', ');
}

const sumInFlight = (endpoints: readonly StatusEndpoint[]): number => endpoints.reduce((s, e) => s + (typeof e.inFlight === 'number' ? e.inFlight : 0), 0);

/** The tables `powerplant status` prints for a status document fetched from `base`. */
export function renderStatus(doc: StatusDoc, base: string): string {
  const out: string[] = [];
  const n = doc.node ?? {};
  out.push(`Powerplant at ${base}`);
  out.push('');
  out.push('health');
  out.push(
    formatTable([
      {
        node: dash(n.nodeId),
        namespace: dash(n.namespace),
        state: dash(n.state),
        live: yesNo(n.live),
        ready: yesNo(n.ready),
        uptime: formatUptime(n.uptimeMs),
        'in flight': typeof n.inFlight === 'number' ? n.inFlight : '-',
        'known nodes': typeof n.registryNodes === 'number' ? n.registryNodes : '-',
      },
    ]),
  );

  const nodes = arr(doc.nodes);
  out.push('');
  out.push(`nodes (${nodes.length})`);
  if (nodes.length === 0) out.push('  (none reported)');
  else {
    out.push(
      formatTable(
        nodes.map((x) => ({
          node: `${dash(x.nodeId)}${x.local === true ? ' (this one)' : ''}`,
          instance: dash(x.instanceId),
          state: x.state !== undefined ? x.state : x.local === true ? dash(n.state) : '-',
          status: dash(x.status),
          services: arr(x.services).map((s) => `${dash(s.name)}@${dash(s.version)}`).join(' ') || '-',
        })),
      ),
    );
  }

  const services = arr(doc.services);
  out.push('');
  out.push(`services (${services.length})`);
  if (services.length === 0) out.push('  (none reported)');
  else {
    out.push(
      formatTable(
        services.map((s) => {
          const eps = arr(s.actions).flatMap((a) => arr(a.endpoints));
          return {
            service: dash(s.name),
            version: typeof s.version === 'number' ? s.version : '-',
            instances: arr(s.instances).length,
            'on nodes': arr(s.instances).join(' ') || '-',
            actions: arr(s.actions).length,
            'in flight': sumInFlight(eps),
            breakers: breakerSummary(eps),
          };
        }),
      ),
    );
    const actions = services.flatMap((s) => arr(s.actions).map((a) => ({ s, a })));
    if (actions.length > 0) {
      out.push('');
      out.push(`actions (${actions.length})`);
      out.push(
        formatTable(
          actions.map(({ s, a }) => {
            const eps = arr(a.endpoints);
            const name = dash(a.name);
            return {
              action: name.includes('.') ? name : `${dash(s.name)}.${name}`,
              endpoints: eps.length,
              'in flight': sumInFlight(eps),
              breakers: breakerSummary(eps),
            };
          }),
        ),
      );
    }
  }

  const p = doc.partitions;
  if (p !== undefined && p !== null && typeof p === 'object') {
    const shards = arr(p.shards);
    const tables = arr(p.tables);
    out.push('');
    out.push(`partitions: ${shards.length} shard${shards.length === 1 ? '' : 's'}, ${tables.length} table${tables.length === 1 ? '' : 's'}`);
    if (shards.length > 0) out.push(formatTable(shards.map((s) => ({ shard: dash(s.shard), engine: dash(s.engine), location: dash(s.location) }))));
    if (tables.length > 0) {
      out.push('');
      out.push(
        formatTable(
          tables.map((t) => ({
            table: dash(t.name),
            kind: dash(t.kind),
            'primary key': describe(t.primaryKey),
            'partition key': describe(t.partitionKey),
            partitioning: describePartitioning(t.partitioning),
            indexes: describeIndexes(t.indexes),
          })),
        ),
      );
    }
  }
  const w = doc.workflows;
  if (w !== undefined && w !== null && typeof w === 'object') {
    const counts = w.counts ?? {};
    out.push('');
    out.push(`workflows: ${Object.entries(counts).map(([k, v]) => `${k} ${String(v)}`).join(', ') || 'none'}`);
    const running = arr(w.running);
    const now = Date.now();
    if (running.length > 0) {
      out.push(formatTable(running.map((r) => ({ id: dash(r.id), workflow: dash(r.name), owner: dash(r.owner), 'age s': typeof r.createdMs === 'number' ? ((now - r.createdMs) / 1000).toFixed(1) : '-' }))));
    }
    const t = w.transactions;
    if (t !== undefined && t !== null && typeof t === 'object') {
      const c = t.committed ?? {};
      const r = t.recovery ?? {};
      out.push(`transactions: ${c.local ?? 0} one-shard, ${c.twoPc ?? 0} two-phase, ${c.none ?? 0} read-only; ${t.aborts ?? 0} aborted attempts, ${t.failed ?? 0} failed; recovery committed ${r.committed ?? 0}, aborted ${r.aborted ?? 0}, skipped ${r.skipped ?? 0}`);
    }
  }
  out.push('');
  return out.join('\n');
}
