/**
 * A bounded queue that is fair between sources: items wait in one FIFO per
 * source, and sources take turns. A source that sends a thousand items gets
 * no more turns than one that sends one, so a client's lone initiation waits
 * for at most one round of the sources ahead of it, not behind a flood.
 *
 * Bounded twice: at most `perSource` items per source and `capacity` in all.
 * What does not fit is refused at the door (the caller counts it), never
 * buffered.
 */
export type Admitted = 'queued' | 'source_full' | 'queue_full';

export class FairQueue<T> {
  /** Per-source FIFOs; the Map's order is the order of turns. */
  private readonly sources = new Map<string, T[]>();
  private count = 0;

  constructor(
    readonly capacity: number,
    readonly perSource: number,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    if (!Number.isInteger(perSource) || perSource < 1) throw new RangeError(`perSource must be a positive integer, got ${perSource}`);
  }

  get size(): number {
    return this.count;
  }

  /** Sources with something waiting. */
  get sourceCount(): number {
    return this.sources.size;
  }

  push(source: string, item: T): Admitted {
    const waiting = this.sources.get(source);
    if (waiting !== undefined && waiting.length >= this.perSource) return 'source_full';
    if (this.count >= this.capacity) return 'queue_full';
    if (waiting === undefined) this.sources.set(source, [item]);
    else waiting.push(item);
    this.count++;
    return 'queued';
  }

  /** The oldest item of the source whose turn it is; that source goes last. */
  shift(): T | undefined {
    const next = this.sources.entries().next();
    if (next.done === true) return undefined;
    const [source, waiting] = next.value;
    const item = waiting.shift() as T;
    this.sources.delete(source);
    if (waiting.length > 0) this.sources.set(source, waiting);
    this.count--;
    return item;
  }
}
