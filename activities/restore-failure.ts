// The restore activities' final failures: a stable type the workflow lists as non-retryable, and a message.
import { ApplicationFailure } from '@temporalio/activity';

export function restoreFailure(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}
