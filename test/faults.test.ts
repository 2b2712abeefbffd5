import { describe, expect, it } from 'vitest';
import { BUG_MODES, DELAY_POINTS, Faults, FaultSpecError, parseBug, parseDelay } from '../src/faults/index.js';

describe('fault spec parsing', () => {
  it('parses --delay POINT=MS[@PROB]', () => {
    expect(parseDelay('punch-before-store=5')).toEqual({ point: 'punch-before-store', spec: { ms: 5, prob: 1 } });
    expect(parseDelay(' read-fill-after-store=0.5@0.25 ')).toEqual({ point: 'read-fill-after-store', spec: { ms: 0.5, prob: 0.25 } });
    expect(parseDelay('write-after-store=0@1')).toEqual({ point: 'write-after-store', spec: { ms: 0, prob: 1 } });
  });

  it('rejects bad delays with errors that list the valid names', () => {
    expect(() => parseDelay('nope=5')).toThrow(FaultSpecError);
    expect(() => parseDelay('nope=5')).toThrow(/valid points: read-fill-before-store, .*truncate-after-store/);
    expect(() => parseDelay('punch-before-store')).toThrow(/POINT=MS\[@PROB\]/);
    expect(() => parseDelay('punch-before-store=-1')).toThrow(/MS\[@PROB\]/);
    expect(() => parseDelay('punch-before-store=abc')).toThrow(FaultSpecError);
    expect(() => parseDelay('punch-before-store=5@1.5')).toThrow(/probability/);
    expect(() => parseDelay('punch-before-store=5@x')).toThrow(/probability/);
    expect(() => parseDelay('punch-before-store=9999999')).toThrow(/out of range/);
  });

  it('parses --bug MODE[@PROB]', () => {
    expect(parseBug('no-range-lock')).toEqual({ mode: 'no-range-lock', prob: 1 });
    expect(parseBug('short-read')).toEqual({ mode: 'short-read', prob: 0.1 });
    expect(parseBug('lost-write@0.5')).toEqual({ mode: 'lost-write', prob: 0.5 });
    expect(() => parseBug('stale-cache')).toThrow(/valid modes: no-range-lock, .*lost-write/);
    expect(() => parseBug('no-notify@0.5')).toThrow(/takes no probability/);
    expect(() => parseBug('lost-write@2')).toThrow(/probability/);
  });
});

describe('Faults', () => {
  it('is inert by default: no delay promise, no bug, no chance', () => {
    const f = new Faults();
    for (const p of DELAY_POINTS) expect(f.delay(p)).toBeUndefined();
    for (const m of BUG_MODES) {
      expect(f.bug(m)).toBe(false);
      expect(f.chance(m)).toBe(false);
    }
    expect(f.status()).toEqual({ seed: 1, bugs: [], bugProbability: {}, delays: {} });
  });

  it('fires delays with the configured probability, reproducibly for a seed', async () => {
    const count = (seed: number): number => {
      const f = new Faults({ seed, delays: ['zero-after-store=0@0.3'] });
      let n = 0;
      for (let i = 0; i < 2000; i++) if (f.delay('zero-after-store') !== undefined) n++;
      expect(f.delay('punch-after-store')).toBeUndefined();
      return n;
    };
    const a = count(42);
    expect(a).toBe(count(42));
    expect(a).toBeGreaterThan(400);
    expect(a).toBeLessThan(800);
    const f = new Faults({ delays: { 'read-before-reply': { ms: 1, prob: 1 } } });
    const d = f.delay('read-before-reply');
    expect(d).toBeInstanceOf(Promise);
    await d;
    expect(f.stats().delaysFired).toEqual({ 'read-before-reply': 1 });
  });

  it('chance() follows the bug probability and only for enabled modes', () => {
    const f = new Faults({ seed: 3, bugs: ['lost-write@0.5', 'no-notify'] });
    expect(f.bug('lost-write')).toBe(true);
    expect(f.bug('no-notify')).toBe(true);
    expect(f.bug('short-read')).toBe(false);
    let n = 0;
    for (let i = 0; i < 1000; i++) if (f.chance('lost-write')) n++;
    expect(n).toBeGreaterThan(400);
    expect(n).toBeLessThan(600);
    expect(f.chance('short-read')).toBe(false);
    expect(f.chance('no-notify')).toBe(true); // probability 1 for all-or-nothing modes
    expect(f.stats().chanceHits['lost-write']).toBe(n);
  });

  it('runtime set/get for the control socket', () => {
    const f = new Faults();
    expect(f.set('bug.stale-cache-on-punch', 'on')).toBe(true);
    expect(f.set('bug.short-read', '0.25')).toBe(true);
    expect(f.set('delay.punch-before-store', '20@0.5')).toBe(true);
    expect(f.set('seed', 99)).toBe(true);
    expect(f.status()).toEqual({
      seed: 99,
      bugs: ['stale-cache-on-punch', 'short-read'],
      bugProbability: { 'short-read': 0.25 },
      delays: { 'punch-before-store': { ms: 20, prob: 0.5 } },
    });
    f.set('bug.stale-cache-on-punch', 'off');
    f.set('delay.punch-before-store', 'off');
    expect(f.status().bugs).toEqual(['short-read']);
    expect(f.delay('punch-before-store')).toBeUndefined();
    expect(f.set('cache-mode', 'writeback')).toBe(false); // not a fault knob
    expect(() => f.set('bug.nope', 'on')).toThrow(/valid modes/);
    expect(() => f.set('bug.no-notify', 'maybe')).toThrow(/on, off/);
    expect(() => f.set('bug.no-notify', '0.5')).toThrow(FaultSpecError);
    expect(() => f.set('delay.nope', '1')).toThrow(/valid points/);
    expect(() => f.set('seed', 'x')).toThrow(/integer/);
  });

  it('constructor takes single strings too', () => {
    const f = new Faults({ bugs: 'no-notify', delays: 'punch-after-store=1' });
    expect(f.status()).toMatchObject({ bugs: ['no-notify'], delays: { 'punch-after-store': { ms: 1, prob: 1 } } });
  });

  it('constructor validates its options', () => {
    expect(() => new Faults({ bugs: ['nope'] })).toThrow(/valid modes/);
    expect(() => new Faults({ delays: ['x=1'] })).toThrow(/valid points/);
    expect(() => new Faults({ delays: { nope: { ms: 1, prob: 1 } } as never })).toThrow(/valid points/);
  });
});
