/**
 * A binary min-heap of distinct items that knows where each item is, so an
 * item whose key changed is moved (or removed) in O(log n) rather than
 * found by a scan. The order is `less`, read from the items themselves:
 * change an item's key, then call `set` on it.
 */
export class IndexedHeap<T> {
  private readonly items: T[] = [];
  private readonly positions = new Map<T, number>();

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  /** The least item, or undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  has(item: T): boolean {
    return this.positions.has(item);
  }

  /** Add `item`, or move it to where its key now puts it. */
  set(item: T): void {
    const at = this.positions.get(item);
    if (at === undefined) {
      this.items.push(item);
      this.positions.set(item, this.items.length - 1);
      this.up(this.items.length - 1);
    } else if (!this.up(at)) {
      this.down(at);
    }
  }

  /** Remove `item`; false when it was not there. */
  delete(item: T): boolean {
    const at = this.positions.get(item);
    if (at === undefined) return false;
    this.positions.delete(item);
    const last = this.items.pop()!;
    if (at < this.items.length) {
      this.items[at] = last;
      this.positions.set(last, at);
      if (!this.up(at)) this.down(at);
    }
    return true;
  }

  /** Sift the item at `i` towards the root; whether it moved. */
  private up(i: number): boolean {
    const item = this.items[i];
    let moved = false;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(item, this.items[parent])) break;
      this.place(this.items[parent], i);
      i = parent;
      moved = true;
    }
    if (moved) this.place(item, i);
    return moved;
  }

  private down(i: number): void {
    const item = this.items[i];
    const n = this.items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && this.less(this.items[right], this.items[left]) ? right : left;
      if (!this.less(this.items[child], item)) break;
      this.place(this.items[child], i);
      i = child;
    }
    this.place(item, i);
  }

  private place(item: T, i: number): void {
    this.items[i] = item;
    this.positions.set(item, i);
  }
}
