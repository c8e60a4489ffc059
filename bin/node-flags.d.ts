// Types for node-flags.js (plain JS: the launcher also runs on Node versions without type stripping).
export declare const NODE_FLAGS: readonly string[];
