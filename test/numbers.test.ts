import { describe, expect, it } from 'vitest';
import { formatFloat32, parseFeature } from '../src/formats/numbers.js';
import { rng } from '../src/demo/churn-data.js';

describe('feature values', () => {
  it.each([
    ['1', 1],
    ['-2.5', -2.5],
    ['+3', 3],
    ['.5', 0.5],
    ['5.', 5],
    ['1e3', 1000],
    ['1.5E-2', Math.fround(0.015)],
    ['  42  ', 42],
    ['0.1', Math.fround(0.1)],
  ])('reads %j as float32 %d', (text, value) => {
    expect(parseFeature(text)).toEqual({ ok: true, value });
  });

  it.each([
    ['', 'empty value (set input.missing: nan to score it as a missing value)'],
    ['   ', 'empty value (set input.missing: nan to score it as a missing value)'],
    ['abc', 'expected a number, got "abc"'],
    ['0x10', 'expected a number, got "0x10"'],
    ['1,5', 'expected a number, got "1,5"'],
    ['12abc', 'expected a number, got "12abc"'],
    ['1_000', 'expected a number, got "1_000"'],
    ['NaN', 'not finite: "NaN" (set input.missing: nan to score it as a missing value)'],
    ['-inf', 'not finite: "-inf"'],
    ['Infinity', 'not finite: "Infinity"'],
    ['1e39', 'out of float32 range: "1e39"'],
    ['x'.repeat(60), `expected a number, got "${'x'.repeat(40)}…"`],
  ])('rejects %j: %s', (text, reason) => {
    expect(parseFeature(text)).toEqual({ ok: false, reason });
  });
});

describe('prediction formatting', () => {
  it('prints the shortest text that reads back as the same float32', () => {
    expect(formatFloat32(Math.fround(0.1))).toBe('0.1');
    expect(formatFloat32(0.5)).toBe('0.5');
    expect(formatFloat32(100)).toBe('100');
    expect(formatFloat32(Math.fround(1 / 3))).toBe('0.33333334');
    expect(formatFloat32(Math.fround(1e-7))).toBe('1e-7');
    expect(formatFloat32(-0)).toBe('-0');
    expect(formatFloat32(0)).toBe('0');
    expect(formatFloat32(Math.fround(3.4e38))).toBe('3.4e+38');
  });

  it('round-trips 100,000 random float32 bit patterns exactly, in at most 9 significant digits', () => {
    const next = rng(1234);
    const bits = new Uint32Array(1);
    const f = new Float32Array(bits.buffer);
    for (let i = 0; i < 100_000; i++) {
      bits[0] = Math.floor(next() * 2 ** 32);
      const value = f[0]!;
      if (!Number.isFinite(value)) continue;
      const text = formatFloat32(value);
      expect(Math.fround(Number(text))).toBe(value);
      expect(text.replace(/^-|e.*$|\./g, '').replace(/^0+|0+$/g, '').length).toBeLessThanOrEqual(9);
    }
  });
});
