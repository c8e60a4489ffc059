// The Node flags Grantpool runs with. The launcher's shebang, `npm start` and
// the launcher's hand-over from an older Node all pass these (a test checks
// that they agree); the benchmark starts the gateway with them too.
//
// --max-semi-space-size=8: V8 sizes the young generation from the machine's
// RAM (3 x 32 MB on a 24 GB machine), far more than a proxy's short-lived
// request objects need; 8 MB keeps ~80 MB of resident memory away at no
// measurable cost in throughput (`npm run bench`, README "Performance").
export const NODE_FLAGS = ['--max-semi-space-size=8'];
