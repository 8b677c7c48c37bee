export { action, defineService, event, createNode } from '../../src/service/index.js';
export { ppError } from '../../src/errors/index.js';
