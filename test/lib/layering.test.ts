import { describe, expect, it } from 'vitest';
import { cyclesOf, importsOf, loopFrom, type Import } from './import-graph';

/**
 * DESIGN.md §4's layers, top to bottom (docs/architecture.md says why each sits where it does).
 * A file may import from its own layer and from any layer below it, never from one above; folders
 * of one layer may import each other, but never in a cycle. A path names a folder of src/ or a
 * top-level file.
 */
const LAYERS = [
  // Wiring: the entry point, the app's routers (and the hosted pages' shared router) and error
  // handler, the deps and the config.
  [
    'src/index.ts',
    'src/app.ts',
    'src/well-known.ts',
    'src/hosted-pages.ts',
    'src/error-channels.tsx',
    'src/request-session.ts',
    'src/deps.ts',
    'src/config.ts',
  ],
  // Features: what answers a request.
  ['gateway', 'oauth', 'account', 'admin'],
  // Services the features share.
  ['auth', 'sessions', 'handoff', 'tokens', 'limits'],
  // Identities, and the mail sent to them.
  ['identity', 'mail'],
  // The schema, the small shared pieces, and the layout, components and messages every page is
  // drawn with (each feature keeps its own pages); origin/ is the verifier origins import.
  ['db', 'lib', 'ui', 'origin'],
] as const;

/** Type-only imports of these reach up from any layer: Deps, AppEnv, Env and Config describe everything below them. */
const TYPES_FROM_ANYWHERE = ['src/deps.ts', 'src/config.ts'];

/** A route file, which only the wiring mounts. */
const isRouteFile = (path: string) => /(^|\/|-)routes(\.tsx?)?$/.test(path);

/** What mounts routers: app.ts, and hosted-pages.ts, which puts the page routers under their shared middleware. */
const MOUNTERS = ['src/app.ts', 'src/hosted-pages.ts'];

const sources = import.meta.glob<string>(['../../src/**/*.{ts,tsx}', '!../../src/**/*.d.ts', '!../../src/ui/generated/**'], {
  query: '?raw',
  import: 'default',
  eager: true,
});
const files = Object.entries(sources).map(([path, text]) => ({ path: path.replace(/^(\.\.\/)+/, ''), text }));

/** `src/auth/risk.ts` → `auth`; a top-level file is its own folder. */
function folderOf(path: string): string {
  const [, first, rest] = /^src\/([^/]+)(\/.*)?$/.exec(path) ?? [];
  if (first === undefined) throw new Error(`${path} is not under src/`);
  return rest === undefined ? `src/${first.replace(/\.tsx?$/, '')}` : first;
}

const layerOf = (path: string): number => {
  const folder = folderOf(path);
  const layer = LAYERS.findIndex((names) => names.some((name) => name === folder || name.replace(/\.tsx?$/, '') === folder));
  if (layer < 0) throw new Error(`${path}: ${folder} is in no layer (add it to LAYERS and to docs/architecture.md)`);
  return layer;
};

const show = (i: Import) => `${i.from} → ${i.to}${i.typeOnly ? ' (type)' : ''}`;
const imports = files.flatMap((f) => importsOf(f.path, f.text)).filter((i) => i.to.startsWith('src/'));

describe('layering (DESIGN.md §4)', () => {
  it('reads every source file and its imports', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(imports.filter((i) => i.typeOnly).length).toBeGreaterThan(50);
    for (const f of files) layerOf(f.path);
  });

  it('points every import down', () => {
    const typeFromAnywhere = (i: Import) => i.typeOnly && TYPES_FROM_ANYWHERE.some((top) => i.to === top.replace(/\.tsx?$/, ''));
    const upward = imports.filter((i) => layerOf(i.to) < layerOf(i.from) && !typeFromAnywhere(i));
    expect(upward.map(show), 'imports that point up: move the code to the layer it belongs to (docs/architecture.md)').toEqual([]);
  });

  it('imports a route file only to mount it', () => {
    const fromRoutes = imports.filter((i) => isRouteFile(i.to) && !MOUNTERS.includes(i.from));
    expect(fromRoutes.map(show), 'imports of a route file: move what they need out of it').toEqual([]);
  });

  it('has no cycle between folders', () => {
    // A folder's route files count apart from it: app.ts alone imports them, so they close no loop.
    const nodeOf = (path: string) => (isRouteFile(path) ? `${folderOf(path)} routes` : folderOf(path));
    const between = imports.filter((i) => !i.typeOnly && nodeOf(i.from) !== nodeOf(i.to));
    const edges = new Map<string, Set<string>>();
    for (const i of between) edges.set(nodeOf(i.from), (edges.get(nodeOf(i.from)) ?? new Set()).add(nodeOf(i.to)));
    // Each cycle as one loop through it, with an import that makes each step.
    const cycles = cyclesOf(edges).map(([start]) => {
      const loop = loopFrom(edges, start!)!;
      const steps = loop.slice(1).map((to, n) => between.find((i) => nodeOf(i.from) === loop[n] && nodeOf(i.to) === to)!);
      return `${loop.join(' → ')}: ${steps.map(show).join(', ')}`;
    });
    expect(cycles, 'folders that import each other').toEqual([]);
  });
});

describe('the import reader', () => {
  it('tells type-only imports from value imports', () => {
    const source = [
      "import type { A } from './a';",
      "import { type B, type C } from './b';",
      "import { type D, e } from './d';",
      "import f, { type G } from './f';",
      "import * as h from './h';",
      "export { i } from './i';",
      "export type { J } from './j';",
      "import './k';",
      'import {',
      '  type L,',
      '  m,',
      "} from '../l';",
      "type N = import('./n').N;",
      "const o = await import('./o');",
      "import { p } from 'hono';",
    ].join('\n');
    expect(importsOf('src/x/y.ts', source).map((i) => [i.to, i.typeOnly])).toEqual([
      ['src/x/a', true],
      ['src/x/b', true],
      ['src/x/d', false],
      ['src/x/f', false],
      ['src/x/h', false],
      ['src/x/i', false],
      ['src/x/j', true],
      ['src/l', false],
      ['src/x/k', false],
      ['src/x/n', true],
      ['src/x/o', false],
    ]);
  });

  it('finds cycles', () => {
    const graph = new Map([
      ['a', new Set(['b'])],
      ['b', new Set(['c'])],
      ['c', new Set(['a'])],
      ['d', new Set(['a'])],
    ]);
    expect(cyclesOf(graph)).toEqual([['a', 'b', 'c']]);
    expect(loopFrom(graph, 'b')).toEqual(['b', 'c', 'a', 'b']);
    expect(loopFrom(graph, 'd')).toBeNull();
  });
});
