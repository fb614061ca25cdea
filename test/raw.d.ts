// Vite's raw imports: a docs page read by the test that keeps it in step with the code.
declare module '*?raw' {
  const text: string;
  export default text;
}
