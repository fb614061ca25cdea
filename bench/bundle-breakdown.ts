import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../scripts/lib/wrangler';

/**
 * The upload's size as wrangler reports it ("Total Upload: … / gzip: …"): the bytes of every module
 * (the wasm ones, then the script) and one gzip over all of them together, at zlib's default level.
 */
export function uploadSize(outdir: string): { bytes: number; gzip: number } {
  const files = readdirSync(outdir);
  const script = files.find((f) => f.endsWith('.js'))!;
  const modules = [...files.filter((f) => f.endsWith('.wasm')), script].map((f) => readFileSync(join(outdir, f)));
  const all = Buffer.concat(modules);
  return { bytes: all.length, gzip: gzipSync(all).length };
}

export interface Part {
  name: string;
  /** Bytes in the (minified) script, from esbuild's metafile. */
  bytes: number;
  /** Its own slices of the script, gzipped on their own (parts share context in the real upload, so these add up to more). */
  gzip: number;
}

/**
 * The script broken down by where its bytes came from: one row per npm package, per src/ folder,
 * and per src/ file of 32 KiB or more, largest gzip first. Bytes come from esbuild's metafile; the
 * gzip column cuts the script into each input's slices with the source map and gzips each part's.
 */
export function breakdown(outdir: string): Part[] {
  const script = readdirSync(outdir).find((f) => f.endsWith('.js'))!;
  const meta = JSON.parse(readFileSync(join(outdir, 'bundle-meta.json'), 'utf8')) as {
    outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
  };
  const output = Object.entries(meta.outputs).find(([path]) => path.endsWith(script))![1];
  const partOf = (path: string, bytes: number) => {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path);
    if (pkg) return pkg[1]!;
    const folder = /^src\/([^/]+)\//.exec(path);
    return folder && bytes < 32 * 1024 ? `src/${folder[1]}/` : path;
  };
  const bytes = new Map<string, number>();
  const partOfInput = new Map<string, string>();
  for (const [path, { bytesInOutput }] of Object.entries(output.inputs)) {
    const part = partOf(path, bytesInOutput);
    partOfInput.set(path, part);
    bytes.set(part, (bytes.get(part) ?? 0) + bytesInOutput);
  }

  const code = readFileSync(join(outdir, script), 'utf8');
  const map = JSON.parse(readFileSync(join(outdir, `${script}.map`), 'utf8')) as { sources: string[]; mappings: string };
  const chained = chainedSources(Object.keys(output.inputs));
  const sourcePart = map.sources.map((s) => {
    const path = relative(ROOT, resolve(outdir, s));
    return partOfInput.get(path) ?? partOfInput.get(chained.get(path) ?? '') ?? '(no source)';
  });
  const text = new Map<string, string[]>();
  for (const { from, to, source } of mappedSlices(code, map.mappings)) {
    const part = source < 0 ? '(no source)' : sourcePart[source]!;
    (text.get(part) ?? text.set(part, []).get(part)!).push(code.slice(from, to));
  }
  // What the source map gives no source for (esbuild's runtime helpers, glue) has no metafile row.
  for (const [part, slices] of text) if (!bytes.has(part)) bytes.set(part, Buffer.byteLength(slices.join('')));
  return [...bytes]
    .map(([name, n]) => ({ name, bytes: n, gzip: gzipSync(text.get(name)?.join('') ?? '').length }))
    .sort((a, b) => b.gzip - a.gzip);
}

/**
 * Sources named by an input's own source map (a package's `.js.map`), each with that input: esbuild
 * chains such maps, so the script's map names the package's original files instead of the input.
 */
function chainedSources(inputs: string[]): Map<string, string> {
  const chained = new Map<string, string>();
  for (const input of inputs) {
    const file = join(ROOT, `${input}.map`);
    if (!existsSync(file)) continue;
    const { sources, sourceRoot = '' } = JSON.parse(readFileSync(file, 'utf8')) as { sources: string[]; sourceRoot?: string };
    for (const s of sources) chained.set(relative(ROOT, resolve(ROOT, dirname(input), sourceRoot, s)), input);
  }
  return chained;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** The script's ranges (string offsets) and the source index each came from (-1: none), from a source map's mappings. */
function* mappedSlices(code: string, mappings: string): Generator<{ from: number; to: number; source: number }> {
  const lineStarts = [0];
  for (let i = code.indexOf('\n'); i >= 0; i = code.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  let source = 0;
  const lines = mappings.split(';');
  for (let n = 0; n < lines.length && n < lineStarts.length; n++) {
    const line = lines[n]!;
    if (!line) continue;
    const start = lineStarts[n]!;
    const end = n + 1 < lineStarts.length ? lineStarts[n + 1]! - 1 : code.length;
    let column = 0;
    const segments: { column: number; source: number }[] = [];
    for (const segment of line.split(',')) {
      const fields = decodeVlq(segment);
      column += fields[0]!;
      if (fields.length > 1) source += fields[1]!;
      segments.push({ column, source: fields.length > 1 ? source : -1 });
    }
    if (segments[0]!.column > 0) segments.unshift({ column: 0, source: -1 });
    for (let i = 0; i < segments.length; i++)
      yield {
        from: start + segments[i]!.column,
        to: i + 1 < segments.length ? start + segments[i + 1]!.column : end,
        source: segments[i]!.source,
      };
  }
}

/** One source-map segment's base64 VLQ fields. */
function decodeVlq(segment: string): number[] {
  const fields: number[] = [];
  let value = 0;
  let shift = 0;
  for (const c of segment) {
    const digit = BASE64.indexOf(c);
    value += (digit & 31) * 2 ** shift;
    if (digit & 32) shift += 5;
    else {
      fields.push(value % 2 ? -(value - 1) / 2 : value / 2);
      value = 0;
      shift = 0;
    }
  }
  return fields;
}
