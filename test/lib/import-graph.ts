/**
 * The static imports of a set of source files, read as text (no compiler): every `import … from`,
 * `export … from`, side-effect `import '…'` and `import('…')`, each marked type-only or not and
 * resolved to a path relative to the repository root. Package imports are left out.
 */
export interface Import {
  from: string;
  /** The imported file's path, without the extension when the specifier has none (`src/lib/errors`). */
  to: string;
  /** `import type …`, `export type …`, an `import { type A, type B }` of types alone, or `import('…').T` in a type. */
  typeOnly: boolean;
}

const STATIC = /^(import|export)(\s+type)?\s+([\w$\s{},*]*?)\s*from\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT = /^import\s*['"]([^'"]+)['"]/gm;
const DYNAMIC = /(\btypeof\s+)?\bimport\(\s*['"]([^'"]+)['"]\s*\)(\.(?!then\b|catch\b|finally\b)[\w$]+)?/g;

/** True when every name a `{ … }` clause brings in is marked `type` (and there is no default or namespace import). */
function onlyTypes(clause: string): boolean {
  const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (!braces) return false;
  const names = braces[1]!
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  return names.length > 0 && names.every((n) => /^type\s/.test(n));
}

function resolve(from: string, specifier: string): string {
  const parts = from.split('/').slice(0, -1);
  for (const part of specifier.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.') parts.push(part);
  }
  return parts.join('/');
}

/** Parses one file; `path` is relative to the repository root (`src/lib/http.ts`). */
export function importsOf(path: string, source: string): Import[] {
  const found: Import[] = [];
  const add = (specifier: string, typeOnly: boolean) => {
    if (specifier.startsWith('.')) found.push({ from: path, to: resolve(path, specifier), typeOnly });
  };
  for (const m of source.matchAll(STATIC)) add(m[4]!, m[2] !== undefined || onlyTypes(m[3]!));
  for (const m of source.matchAll(SIDE_EFFECT)) add(m[1]!, false);
  for (const m of source.matchAll(DYNAMIC)) add(m[2]!, m[1] !== undefined || m[3] !== undefined);
  return found;
}

/** Every cycle in a directed graph (one per strongly connected component of more than one node), nodes sorted. */
export function cyclesOf(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string) => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const next of edges.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of edges.keys()) if (!index.has(node)) visit(node);
  return components;
}

/** A shortest loop from `start` back to it (`[start, …, start]`), or null when there is none. */
export function loopFrom(edges: ReadonlyMap<string, ReadonlySet<string>>, start: string): string[] | null {
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const next of edges.get(node) ?? []) {
      if (next === start) {
        const path = [node];
        while (path[0] !== start) path.unshift(cameFrom.get(path[0]!)!);
        return [...path, start];
      }
      if (!cameFrom.has(next)) {
        cameFrom.set(next, node);
        queue.push(next);
      }
    }
  }
  return null;
}
