// Injected into the CommonJS bundles: what `import.meta.url` means there.
export const __import_meta_url = require('url').pathToFileURL(__filename).href;
