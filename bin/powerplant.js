#!/usr/bin/env node
// The `powerplant` command: runs the TypeScript CLI (src/cli/main.ts) through tsx's loader, so the
// command works from a checkout without a build step.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
