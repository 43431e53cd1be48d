// The message an operator needs from a Temporal failure: the innermost cause (the activity's own error), not its wrappers.
export function rootCauseMessage(err: unknown): string {
  let current: unknown = err;
  let message = err instanceof Error ? err.message : String(err);
  while (current instanceof Error && current.cause instanceof Error) {
    current = current.cause;
    message = (current as Error).message;
  }
  return message;
}
