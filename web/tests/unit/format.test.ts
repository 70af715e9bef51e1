// The metric formatter: units people read on cards, tables and charts.
import { describe, expect, test } from 'vitest';
import { formatBytes, formatDuration, formatValue } from '../../src/metrics/format';

describe('formatBytes', () => {
  test('uses binary prefixes and three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1,023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(10.5 * 1024 * 1024)).toBe('10.5 MiB');
    expect(formatBytes(123.4 * 1024 ** 3)).toBe('123 GiB');
    expect(formatBytes(-2048)).toBe('-2 KiB');
    expect(formatBytes(2 ** 60)).toBe('1,024 PiB');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
  test('follows the locale', () => {
    expect(formatBytes(1536, 'de')).toBe('1,5 KiB');
  });
});

describe('formatValue', () => {
  test('formats each unit', () => {
    expect(formatValue(42.345, 'percent')).toBe('42 %');
    expect(formatValue(4.25, 'percent')).toBe('4.3 %');
    expect(formatValue(2048, 'bytes_per_s')).toBe('2 KiB/s');
    expect(formatValue(3.14159, 'load')).toBe('3.14');
    expect(formatValue(12.5, 'per_s')).toBe('12.5/s');
    expect(formatValue(7, 'count')).toBe('7');
    expect(formatValue(93784, 'seconds')).toBe('1d 2h');
  });
  test('shows a dash for missing values', () => {
    expect(formatValue(null, 'percent')).toBe('—');
    expect(formatValue(undefined, 'bytes')).toBe('—');
    expect(formatValue(Number.POSITIVE_INFINITY, 'load')).toBe('—');
  });
});

describe('formatDuration', () => {
  test('keeps the two largest units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(3600)).toBe('1h');
    expect(formatDuration(3661)).toBe('1h 1m');
    expect(formatDuration(-1)).toBe('—');
  });
});
