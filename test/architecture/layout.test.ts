/**
 * The house rules of the tree, checked on the source itself (docs/architecture.md states them):
 * a folder under src/ imports another folder only through its index.ts, the folders do not
 * import each other in a cycle, util/ (which every folder may use) imports nothing but errors/,
 * nothing under src/ reaches into examples/ (the platform does not know its applications), and no
 * source file is over 800 lines (one that grows past it is split by responsibility).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const src = join(root, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sourceFiles(p);
    return p.endsWith('.ts') ? [p] : [];
  });
}

/** Top-level folder of a path under src/ ('' for src/index.ts itself). */
function folderOf(path: string): string {
  const rel = relative(src, path).split(sep);
  return rel.length > 1 ? rel[0]! : '';
}

interface Edge {
  from: string;
  file: string;
  target: string;
}

function crossFolderImports(): Edge[] {
  const edges: Edge[] = [];
  const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'(\.{1,2}\/[^']+)'/g;
  for (const file of sourceFiles(src)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(importRe)) {
      const target = resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'));
      const from = folderOf(file);
      const to = folderOf(target);
      if (from !== '' && from !== to) edges.push({ from, file: relative(src, file), target: relative(src, target) });
    }
  }
  return edges;
}

/** The longest a file under src/ may be, in lines (docs/contributing.md). */
const FILE_LINES_MAX = 800;

/** Lines of a text: the newline characters, plus a last line without one. */
function lineCount(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return text.length > 0 && !text.endsWith('\n') ? n + 1 : n;
}

describe('source layout', () => {
  const edges = crossFolderImports();

  it('finds the cross-folder imports it checks (the scan itself works)', () => {
    expect(edges.some((e) => e.target === join('errors', 'index.ts'))).toBe(true);
    expect(edges.length).toBeGreaterThan(20);
  });

  it('a folder imports another folder only through its index.ts', () => {
    const bad = edges.filter((e) => e.target !== join(folderOf(join(src, e.target)), 'index.ts'));
    expect(bad).toEqual([]);
  });

  it('util/ imports nothing but errors/ (no other folder, no package, no Node module)', () => {
    const specRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/g;
    const bad: string[] = [];
    for (const file of sourceFiles(join(src, 'util'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(specRe)) {
        const spec = m[1]!;
        const to = spec.startsWith('.') ? folderOf(resolve(dirname(file), spec)) : undefined;
        if (to !== 'util' && to !== 'errors') bad.push(`${relative(src, file)} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('nothing under src/ imports examples/ (static or dynamic import, or a module URL)', () => {
    // Every way a file names another module by a relative path: `import … from`, `export … from`,
    // `import('…')`, `new URL('…', import.meta.url)` (what the CLI once used to load the shop).
    const specRe = /(?:\bfrom\s+|\bimport\s*\(\s*|\bnew\s+URL\s*\(\s*)(['"`])(\.{1,2}\/[^'"`]*)\1/g;
    const examples = join(root, 'examples');
    const bad: string[] = [];
    let seen = 0;
    for (const file of sourceFiles(src)) {
      for (const m of readFileSync(file, 'utf8').matchAll(specRe)) {
        seen++;
        const target = resolve(dirname(file), m[2]!);
        if (target === examples || target.startsWith(examples + sep)) bad.push(`${relative(root, file)} -> ${m[2]!}`);
      }
    }
    expect(seen).toBeGreaterThan(edges.length); // the scan sees the imports (within folders too)
    expect(bad).toEqual([]);
  });

  it(`no source file under src/ is over ${FILE_LINES_MAX} lines`, () => {
    const files = sourceFiles(src);
    expect(files.length).toBeGreaterThan(50); // the scan sees the tree
    const over = files
      .map((f) => ({ file: relative(root, f), lines: lineCount(readFileSync(f, 'utf8')) }))
      .filter((f) => f.lines > FILE_LINES_MAX)
      .map((f) => `${f.file}: ${f.lines} lines`);
    expect(over).toEqual([]);
  });

  it('the folders do not import each other in a cycle', () => {
    const graph = new Map<string, Set<string>>();
    for (const e of edges) {
      const to = folderOf(join(src, e.target));
      if (!graph.has(e.from)) graph.set(e.from, new Set());
      graph.get(e.from)!.add(to);
    }
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (node: string, path: string[]): void => {
      if (state.get(node) === 'done') return;
      if (state.get(node) === 'open') {
        cycles.push([...path.slice(path.indexOf(node)), node].join(' -> '));
        return;
      }
      state.set(node, 'open');
      for (const next of graph.get(node) ?? []) visit(next, [...path, node]);
      state.set(node, 'done');
    };
    for (const node of graph.keys()) visit(node, []);
    expect(cycles).toEqual([]);
  });
});
