// Types of build-freshness.mjs, for the TypeScript code that asks whether dist/ is current.
export declare const BUILD_INPUT_DIRS: readonly string[];
export declare const BUILD_INPUT_FILES: readonly string[];
export declare const BUILD_STAMP: string;
export declare function buildState(root: string): 'current' | 'missing' | 'stale';
