// Every activity, built from the process's dependencies (re-exports and one factory).
import type { Dependencies } from '../src/runtime/dependencies';
import { createPreflightActivities } from './preflight';

export function createActivities(deps: Dependencies) {
  return {
    ...createPreflightActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
