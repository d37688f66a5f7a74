/** `import text from './file?raw'`: the file's text (vite in tests, an esbuild plugin in the build). */
declare module '*?raw' {
  const text: string;
  export default text;
}
