/**
 * A pass that runs every interval and on demand; calls that come while a
 * pass is under way share it (or, through runAfter(), the one after it),
 * so passes never overlap. The timer does not keep the process alive.
 */
export class PeriodicPass<T> {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<T> | null = null;
  /** The pass asked for by runAfter() while one was under way: it starts when that one ends. */
  private queued: Promise<T> | null = null;
  private stopped = false;

  constructor(private readonly pass: () => Promise<T>) {}

  start(intervalMs: number): void {
    this.stopped = false;
    this.timer = setInterval(() => void this.run(), intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass under way; a pass queued by runAfter() does not start. */
  async stop(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stopped = true;
    await this.running;
    await this.queued;
  }

  run(): Promise<T> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /**
   * A pass that starts after this call: the one under way (which may have
   * read its input already) is followed by one more, shared by every call
   * until it starts.
   */
  runAfter(): Promise<T> {
    if (this.running === null) return this.run();
    const current = this.running;
    this.queued ??= current.then(
      () => this.next(current),
      () => this.next(current),
    );
    return this.queued;
  }

  /** The queued pass, unless stop() came meanwhile: then the outcome of the one it waited for. */
  private next(waited: Promise<T>): Promise<T> {
    this.queued = null;
    return this.stopped ? waited : this.run();
  }
}
