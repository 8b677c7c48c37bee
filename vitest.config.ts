import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = fileURLToPath(new URL('./src/', import.meta.url));

export default defineConfig({
  // Examples import the package by name, as a user would; inside the repo that name is src/.
  resolve: {
    alias: [
      { find: /^powerplant$/, replacement: `${src}index.ts` },
      { find: /^powerplant\/(.*)$/, replacement: `${src}$1/index.ts` },
    ],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Property tests run many cases; engine tests talk to real servers. Neither should hang CI.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
