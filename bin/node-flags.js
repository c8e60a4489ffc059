// How Grantpool's Node process is started. The launcher's shebang, `npm start`
// and the launcher's hand-over from an older Node all use these (a test checks
// that they agree); the benchmark starts the gateway and its baseline with
// them too.
//
// --max-semi-space-size=4: V8 sizes the young generation from the machine's
// RAM (3 x 32 MB on a 24 GB machine), far more than a proxy's short-lived
// request objects need (a request lives a few milliseconds); 4 MB keeps
// ~90 MB of resident memory away at no measurable cost in throughput
// (`npm run bench`, docs/performance.md).
//
// --no-concurrent-recompilation: V8's optimising compiler works on helper
// threads by default, each job with its own scratch memory; with one malloc
// arena (below) those jobs fragment the heap that the main thread then keeps
// (~10 MB after load). Compiling on the main thread instead costs a few
// milliseconds per hot function while the gateway warms up, nothing after.
//
// --heap-growing-percent=50: after each full GC, V8 lets the old generation
// grow to up to 4 x what survived before the next one (its factor follows how
// fast its GC is against the program); the request objects that outlive a
// young-generation GC pile up there, so RSS after a burst was anywhere from
// live + 10 MB to live + 55 MB. 50 % bounds that slack with no more full GCs
// under load than before (docs/performance-log.md). It is a growth factor,
// not a limit: a heap of 100,000 accounts grows as it needs. (20 % ran five
// times the full GCs; 35 % looked a few per cent dearer per request.)
//
// --expose-gc: the gateway runs one compacting GC when it falls idle after a
// burst (src/app/memory-settle.ts): V8 keeps the heap a burst grew to, and a
// full GC of its own choosing neither comes nor compacts while nothing
// allocates. At 100,000 accounts on PostgreSQL: RSS 211 -> 178 MB after
// 10,000 requests. Nothing else calls gc().
export const NODE_FLAGS = ['--max-semi-space-size=4', '--no-concurrent-recompilation', '--heap-growing-percent=50', '--expose-gc'];

// MALLOC_ARENA_MAX=1: glibc gives each thread that allocates (V8's compiler
// and GC helpers, libuv's pool) an arena of its own, up to 8 per core, and
// keeps what was freed in each; Node's work happens on its main thread, so one
// arena keeps ~15 MB of resident memory away after load
// (docs/performance-log.md). Other C libraries ignore it.
//
// MALLOC_MMAP_THRESHOLD_=131072: glibc serves a block of 128 KiB or more with
// a mapping of its own, returned to the system when freed. Without it the
// threshold rises to the largest block freed so far (up to 32 MiB), so the
// buffers of a start (reading 100,000 accounts, a database's result pages)
// come from the main heap afterwards and stay resident there as holes
// (~12 MB of 27 after load at 100,000 accounts on files; docs/performance-log.md).
// Setting it also fixes the trim threshold at its default, 128 KiB.
export const NODE_ENV = { MALLOC_ARENA_MAX: '1', MALLOC_MMAP_THRESHOLD_: '131072' };

/** NODE_ENV as shell assignments (`A=1 B=2`), as the shebang and `npm start` write them. */
export function envAssignments(env = NODE_ENV) {
  return Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
}
