// Results of concurrent work handed back in the order the work was started, with a bounded number in flight.

/**
 * Push promises in order; get back, in that same order, every result that is ready. At most `capacity` results wait
 * (finished or not), so memory stays bounded however long the stream, while work behind a slow item goes on.
 */
export class OrderedWindow<T> {
  private readonly queue: { promise: Promise<T>; settled: boolean }[] = [];

  constructor(private readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError(`an ordered window needs a capacity of at least 1, got ${capacity}`);
  }

  /** Adds `promise`; resolves with the results now ready at the head (waiting for the head while the window is full). */
  async push(promise: Promise<T>): Promise<T[]> {
    const slot = { promise, settled: false };
    // A rejection is handled here and rethrown when its turn comes: none goes unhandled meanwhile.
    promise.then(
      () => (slot.settled = true),
      () => (slot.settled = true),
    );
    this.queue.push(slot);
    const ready: T[] = [];
    while (this.queue.length > 0 && (this.queue.length > this.capacity || this.queue[0]!.settled)) {
      ready.push(await this.queue.shift()!.promise);
    }
    return ready;
  }

  /** Every remaining result, in order. */
  async drain(): Promise<T[]> {
    const ready: T[] = [];
    while (this.queue.length > 0) ready.push(await this.queue.shift()!.promise);
    return ready;
  }
}
