// Vite's raw imports: a docs page read by the test that keeps it in step with the code.
declare module '*?raw' {
  const text: string;
  export default text;
}

// Vite's import.meta.glob, as test/lib/layering.test.ts reads the sources with it.
interface ImportMeta {
  glob<T>(patterns: string | string[], options: { query: '?raw'; import: 'default'; eager: true }): Record<string, T>;
}
