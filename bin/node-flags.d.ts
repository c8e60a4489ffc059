// Types for node-flags.js (plain JS: the launcher also runs on Node versions without type stripping).
export declare const NODE_FLAGS: readonly string[];
export declare const NODE_ENV: Readonly<Record<string, string>>;
export declare function envAssignments(env?: Readonly<Record<string, string>>): string;
