// Results of work that finishes out of order, folded in the order it was started: a count of items done, kept in a
// heartbeat for a retry to resume from, then never counts an item whose result is not yet folded.

export class InOrderFold {
  private readonly finished = new Map<number, () => void>();

  /** `progress.entriesDone` is the number folded so far, and the sequence number of the next one to fold. */
  constructor(private readonly progress: { entriesDone: number }) {}

  /** Item `seq` is finished: its fold runs now if every earlier one has run, else once they have. */
  complete(seq: number, fold: () => void): void {
    this.finished.set(seq, fold);
    for (let next = this.finished.get(this.progress.entriesDone); next; next = this.finished.get(this.progress.entriesDone)) {
      this.finished.delete(this.progress.entriesDone);
      next();
      this.progress.entriesDone += 1;
    }
  }
}
