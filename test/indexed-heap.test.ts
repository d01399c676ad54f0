import { describe, expect, it } from 'vitest';
import { seededRandom } from '../bench/src/phases.js';
import { IndexedHeap } from '../src/utils/indexed-heap.js';

interface Item {
  id: number;
  key: number;
}

const byKeyThenId = (a: Item, b: Item) => (a.key !== b.key ? a.key < b.key : a.id < b.id);

describe('IndexedHeap', () => {
  it('gives the least item first, and the next after it is deleted', () => {
    const heap = new IndexedHeap(byKeyThenId);
    const items = [5, 3, 8, 1, 9, 2].map((key, id) => ({ id, key }));
    for (const item of items) heap.set(item);
    const order: number[] = [];
    while (heap.size > 0) {
      const least = heap.peek()!;
      order.push(least.key);
      expect(heap.delete(least)).toBe(true);
    }
    expect(order).toEqual([1, 2, 3, 5, 8, 9]);
    expect(heap.peek()).toBeUndefined();
  });

  it('moves an item whose key changed, up or down, without adding it twice', () => {
    const heap = new IndexedHeap(byKeyThenId);
    const a = { id: 0, key: 10 };
    const b = { id: 1, key: 20 };
    const c = { id: 2, key: 30 };
    for (const item of [a, b, c]) heap.set(item);
    c.key = 5;
    heap.set(c);
    expect(heap.peek()).toBe(c);
    c.key = 40;
    heap.set(c);
    expect(heap.peek()).toBe(a);
    expect(heap.size).toBe(3);
  });

  it('says false when deleting an item it does not hold', () => {
    const heap = new IndexedHeap(byKeyThenId);
    const a = { id: 0, key: 1 };
    heap.set(a);
    expect(heap.delete({ id: 0, key: 1 })).toBe(false);
    expect(heap.has(a)).toBe(true);
    expect(heap.delete(a)).toBe(true);
    expect(heap.delete(a)).toBe(false);
  });

  it('agrees with a sorted list over random adds, key changes and deletes', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = seededRandom(seed);
      const heap = new IndexedHeap(byKeyThenId);
      const held = new Set<Item>();
      let nextId = 0;
      for (let step = 0; step < 2000; step++) {
        const r = rnd();
        const pool = [...held];
        if (r < 0.4 || pool.length === 0) {
          const item = { id: nextId++, key: Math.floor(rnd() * 50) };
          heap.set(item);
          held.add(item);
        } else if (r < 0.75) {
          const item = pool[Math.floor(rnd() * pool.length)];
          item.key = Math.floor(rnd() * 50);
          heap.set(item);
        } else {
          const item = r < 0.9 ? pool[Math.floor(rnd() * pool.length)] : heap.peek()!;
          heap.delete(item);
          held.delete(item);
        }
        const least = [...held].sort((a, b) => (byKeyThenId(a, b) ? -1 : 1))[0];
        expect(heap.peek(), `seed ${seed} step ${step}`).toBe(least);
        expect(heap.size).toBe(held.size);
      }
    }
  });
});
