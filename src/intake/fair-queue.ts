/**
 * A bounded queue that is fair between sources: items wait in one FIFO per
 * source, and sources take turns. A source that sends a thousand items gets
 * no more turns than one that sends one, so a client's lone initiation waits
 * for at most one round of the sources ahead of it, not behind a flood.
 *
 * Bounded twice: at most `perSource` items per source and `capacity` in all.
 * When it is full, the newest item of the longest FIFO makes room (longest
 * queue drop): a flood fills the queue, and still cannot keep a new source
 * out of it. What does not fit is refused or displaced, and the caller
 * counts it; nothing is buffered beyond the bounds.
 */
export type Admitted =
  /** Waiting for its turn. */
  | 'queued'
  /** Waiting, and the newest item of a longer FIFO was dropped to make room. */
  | 'displaced'
  /** Refused: its source already has perSource items waiting. */
  | 'source_full'
  /** Refused: full, and no FIFO is longer than the one it would join. */
  | 'queue_full';

export class FairQueue<T> {
  /** Per-source FIFOs; the Map's order is the order of turns. */
  private readonly sources = new Map<string, T[]>();
  /** Sources by the length of their FIFO (index 1..perSource), to find the longest at once. */
  private readonly byLength: Array<Set<string>>;
  private count = 0;

  constructor(
    readonly capacity: number,
    readonly perSource: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    if (!Number.isInteger(perSource) || perSource < 1) throw new RangeError(`perSource must be a positive integer, got ${perSource}`);
    this.byLength = Array.from({ length: perSource + 1 }, () => new Set<string>());
  }

  get size(): number {
    return this.count;
  }

  /** Sources with something waiting. */
  get sourceCount(): number {
    return this.sources.size;
  }

  push(source: string, item: T): Admitted {
    const waiting = this.sources.get(source) ?? [];
    if (waiting.length >= this.perSource) return 'source_full';
    let admitted: Admitted = 'queued';
    if (this.count >= this.capacity) {
      if (!this.dropFromLongerThan(waiting.length + 1)) return 'queue_full';
      admitted = 'displaced';
    }
    if (waiting.length === 0) this.sources.set(source, waiting);
    waiting.push(item);
    this.moved(source, waiting.length - 1, waiting.length);
    this.count++;
    return admitted;
  }

  /** The oldest item of the source whose turn it is; that source goes last. */
  shift(): T | undefined {
    const next = this.sources.entries().next();
    if (next.done === true) return undefined;
    const [source, waiting] = next.value;
    const item = waiting.shift() as T;
    this.sources.delete(source);
    if (waiting.length > 0) this.sources.set(source, waiting);
    this.moved(source, waiting.length + 1, waiting.length);
    this.count--;
    return item;
  }

  /** Drops the newest item of a longest FIFO if it holds more than `length`. */
  private dropFromLongerThan(length: number): boolean {
    for (let l = this.perSource; l > length; l--) {
      const source = this.byLength[l]!.values().next().value;
      if (source === undefined) continue;
      const waiting = this.sources.get(source)!;
      waiting.pop();
      if (waiting.length === 0) this.sources.delete(source);
      this.moved(source, l, l - 1);
      this.count--;
      return true;
    }
    return false;
  }

  private moved(source: string, from: number, to: number): void {
    if (from > 0) this.byLength[from]!.delete(source);
    if (to > 0) this.byLength[to]!.add(source);
  }
}
