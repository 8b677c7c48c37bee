import { describe, expect, it } from 'vitest';
import { formatTable } from '../../src/util/index.js';

// Moved from test/partition/quality.test.ts with the formatter (src/partition -> src/util).
describe('formatTable', () => {
  it('formatTable aligns columns', () => {
    const text = formatTable([
      { strategy: 'jump', cv: 1.23456, n: 10 },
      { strategy: 'rendezvous', cv: 0.5, n: 100 },
    ]);
    expect(text.split('\n')).toEqual([
      'strategy       cv    n',
      '----------  -----  ---',
      'jump        1.235   10',
      'rendezvous  0.500  100',
    ]);
    expect(formatTable([])).toBe('');
  });
});
