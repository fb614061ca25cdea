import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config';
import { base, issuesOf } from './helpers';

describe('retention configuration (issue 17)', () => {
  it('has documented defaults and reads each variable', () => {
    expect(parseConfig(base).retention).toEqual({
      auditDays: 400,
      signInHistoryDays: 180,
      signInHistoryPerKind: 20,
      batchSize: 500,
      maxRowsPerRun: 50_000,
    });
    expect(
      parseConfig({
        ...base,
        RETENTION_AUDIT_DAYS: '0',
        RETENTION_SIGN_IN_HISTORY_DAYS: '30',
        RETENTION_SIGN_IN_HISTORY_PER_KIND: '5',
        RETENTION_BATCH_SIZE: '100',
        RETENTION_MAX_ROWS_PER_RUN: '1000',
      }).retention,
    ).toEqual({ auditDays: 0, signInHistoryDays: 30, signInHistoryPerKind: 5, batchSize: 100, maxRowsPerRun: 1000 });
  });

  it.each([
    ['RETENTION_AUDIT_DAYS', '-1'],
    ['RETENTION_AUDIT_DAYS', 'forever'],
    ['RETENTION_SIGN_IN_HISTORY_DAYS', '0'],
    ['RETENTION_SIGN_IN_HISTORY_PER_KIND', '2.5'],
    ['RETENTION_BATCH_SIZE', '0'],
    ['RETENTION_BATCH_SIZE', '100000'],
    ['RETENTION_MAX_ROWS_PER_RUN', 'lots'],
  ])('refuses %s=%s with an error that names it', (name, value) => {
    const issues = issuesOf({ ...base, [name]: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(new RegExp(`^${name}: `));
  });
});
