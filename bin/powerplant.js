#!/usr/bin/env node
// The `powerplant` command: runs the TypeScript CLI (src/cli/main.ts) through tsx's loader, so the
// command works from a checkout or an install without a build step.
//
// The package's own tsconfig is named explicitly: its `paths` map `powerplant` to src/, so a user's
// entry module (`powerplant start ./services.ts`) and the shop import the package by name whatever
// the working directory is. main.ts's "run when executed directly" guard cannot fire through this
// shim (process.argv[1] is this file), so the shim calls the exported run() itself.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

const tsconfig = fileURLToPath(new URL('../tsconfig.json', import.meta.url));
register(existsSync(tsconfig) ? { tsconfig } : {});
const { run } = await import('../src/cli/main.ts');
process.exitCode = await run(process.argv.slice(2));
