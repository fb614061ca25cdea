/**
 * Path normalisation for the gateway (DESIGN.md §3): the policy decision is made on exactly the
 * path that is forwarded, so anything an origin could read differently from us is refused rather
 * than guessed at.
 *
 * - Percent-encoded unreserved characters (A–Z a–z 0–9 - . _ ~) are decoded; every other escape is
 *   kept, with its hex in upper case.
 * - Duplicate slashes collapse; `.` and `..` segments are resolved (never above the root).
 * - Refused: encoded `/` `\` `.` (%2F %5C %2E — some servers decode them after routing), a raw
 *   backslash, NUL or any control character, `;` (path parameters, which servlet containers strip),
 *   a segment ending in `.` or whitespace (which Windows servers strip), malformed escapes, and
 *   escapes that are not valid UTF-8 (overlong forms included).
 * - Refused, because decoding it is not stable: an encoded `%` followed by an escape (`%252e`,
 *   `%2525…`: an origin that decodes twice sees `.`, `/`, `\`), text that Unicode normalisation
 *   (NFKC) changes — full-width dots and slashes become `.` and `/`, the Kelvin sign `K`, decomposed
 *   accents composed ones — and characters whose upper or lower case is ASCII (`ı`, `ſ`, `ß`), for
 *   an origin that normalises or case-folds paths that way.
 *
 * Route matching is then case-insensitive (`matchesPattern`), so `/ADMIN` cannot slip past a rule
 * for `/admin` to an origin that ignores case; the path is forwarded as normalised, case kept.
 */
export type NormalisedPath = { ok: true; path: string } | { ok: false; reason: string };

const UNRESERVED = /[A-Za-z0-9\-._~]/;
/**
 * Non-ASCII characters whose case mapping contains ASCII: `ı`→`I`, `ſ`→`S`, `ß`→`SS`, `İ`→`i̇`,
 * `ŉ`→`ʼN` (the Kelvin and Ångström signs are NFKC's already). An origin that upper- or lower-cases
 * paths before routing would see `/admin` where we saw `/admın`.
 */
const FOLDS_TO_ASCII = /[\u0130\u0131\u0149\u017f\u00df\u01f0\u1e96-\u1e9a\u1e9e\ufb00-\ufb06]/;
const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function refuse(reason: string): NormalisedPath {
  return { ok: false, reason };
}

/** Normalises the raw path of a request URL (no query, no fragment). */
export function normalisePath(raw: string): NormalisedPath {
  if (!raw.startsWith('/')) return refuse('the path must start with /');
  if (raw.length > 8192) return refuse('the path is too long');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses.
  if (/[\u0000-\u001f\u007f\\;]/.test(raw)) return refuse('the path contains a control character, a backslash or ;');

  // Decode unreserved escapes; validate every escape sequence as UTF-8.
  let out = '';
  for (let i = 0; i < raw.length; ) {
    const ch = raw[i]!;
    if (ch !== '%') {
      out += ch;
      i++;
      continue;
    }
    // A run of escapes is checked as one UTF-8 sequence.
    const bytes: number[] = [];
    let j = i;
    while (raw[j] === '%') {
      const hex = raw.slice(j + 1, j + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return refuse('the path has a malformed percent-escape');
      bytes.push(parseInt(hex, 16));
      j += 3;
    }
    try {
      fatal.decode(new Uint8Array(bytes));
    } catch {
      return refuse('the path has percent-escapes that are not valid UTF-8');
    }
    for (const b of bytes) {
      if (b === 0x2f || b === 0x5c || b === 0x2e) return refuse('the path has an encoded /, \\ or .');
      if (b < 0x20 || b === 0x7f || b === 0x3b) return refuse('the path has an encoded control character or ;');
      const c = String.fromCharCode(b);
      out += b < 0x80 && UNRESERVED.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    i = j;
  }

  if (/%25[0-9A-Fa-f]{2}/.test(out)) return refuse('the path is percent-encoded twice (an encoded % before an escape)');
  let text: string;
  try {
    text = decodeURIComponent(out);
  } catch {
    return refuse('the path has percent-escapes that are not valid UTF-8');
  }
  if (text.normalize('NFKC') !== text) return refuse('the path has characters that Unicode normalisation (NFKC) changes');
  if (FOLDS_TO_ASCII.test(text)) return refuse('the path has a character whose upper or lower case is plain ASCII (ı, ß, İ)');

  const segments: string[] = [];
  for (const segment of out.split('/').slice(1)) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') {
      if (segments.length === 0) return refuse('the path climbs above the root');
      segments.pop();
      continue;
    }
    if (/[.\s]$/.test(segment) || /%20$/.test(segment)) return refuse('a path segment ends in a dot or whitespace');
    segments.push(segment);
  }
  const trailingSlash = out.length > 1 && out.endsWith('/') && segments.length > 0;
  return { ok: true, path: `/${segments.join('/')}${trailingSlash ? '/' : ''}` };
}

/**
 * Whether a normalised path matches a route pattern: exact (`/health`), or a prefix ending in `/*`
 * (`/demo/me/*` matches `/demo/me` and everything below it). Case-insensitive, on whole segments.
 */
export function matchesPattern(path: string, pattern: string): boolean {
  const p = path.toLowerCase();
  const q = pattern.toLowerCase();
  if (q === '/*') return true;
  if (q.endsWith('/*')) {
    const base = q.slice(0, -2);
    return p === base || p.startsWith(`${base}/`);
  }
  return p === q || p === `${q}/`;
}
