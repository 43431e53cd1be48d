// A forward-only cursor over a stream sorted by key: the lookup side of a merge, so nothing holds a whole listing.

/** Moves surrogates (code points past U+FFFF) after U+E000-U+FFFF, where UTF-8's byte order puts them. */
function codePointRank(unit: number): number {
  if (unit >= 0xe000) return unit - 0x800;
  if (unit >= 0xd800) return unit + 0x2000;
  return unit;
}

/**
 * S3 lists keys in the byte order of their UTF-8 encoding, which is code point order; JavaScript's `<` compares
 * UTF-16 units, which differs only between a surrogate and U+E000-U+FFFF. Compared in place, without encoding.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/**
 * Answers "the item with this key, if any" for keys asked in ascending order, reading the source once. If the source
 * turns out not to be sorted, or keys are asked out of order, it answers "none" from then on: a merge partner that
 * treats "none" as "not held" (copy it again) stays correct, only slower.
 */
export class SortedCursor<T> {
  private readonly iterator: AsyncIterator<T> | undefined;
  private current: T | undefined;
  private currentKey: string | undefined;
  private lastAsked: string | undefined;
  private started = false;
  private done = false;
  /** True once the source or the questions were found out of order. */
  unsorted = false;

  /**
   * `strict`: an unsorted source or out-of-order question is an error instead of "none", for a merge partner that
   * would act on "none" by deleting.
   */
  constructor(
    source: AsyncIterable<T> | undefined,
    private readonly keyOf: (item: T) => string,
    private readonly strict = false,
  ) {
    this.iterator = source?.[Symbol.asyncIterator]();
    if (!this.iterator) this.done = true;
  }

  static empty<T>(): SortedCursor<T> {
    return new SortedCursor<T>(undefined, () => '');
  }

  private async advance(): Promise<void> {
    const next = await this.iterator!.next();
    if (next.done) {
      this.done = true;
      this.current = undefined;
      return;
    }
    const key = this.keyOf(next.value);
    if (this.currentKey !== undefined && compareKeys(key, this.currentKey) < 0) {
      if (this.strict) throw new Error(`a sorted merge met "${key}" after "${this.currentKey}": its source is not in key order`);
      this.unsorted = true;
      this.done = true;
      this.current = undefined;
      return;
    }
    this.current = next.value;
    this.currentKey = key;
  }

  /** The item whose key equals `key`, skipping every smaller one; undefined when there is none. */
  async seek(key: string): Promise<T | undefined> {
    if (this.lastAsked !== undefined && compareKeys(key, this.lastAsked) < 0) {
      if (this.strict) throw new Error(`a sorted merge was asked for "${key}" after "${this.lastAsked}": the listing is not in key order`);
      this.unsorted = true;
    }
    this.lastAsked = key;
    if (this.unsorted || this.done) return undefined;
    if (!this.started) {
      this.started = true;
      await this.advance();
    }
    while (!this.done && compareKeys(this.currentKey!, key) < 0) await this.advance();
    return !this.done && this.currentKey === key ? this.current : undefined;
  }

  async close(): Promise<void> {
    if (this.iterator?.return && !this.done) await this.iterator.return(undefined);
    this.done = true;
  }
}
