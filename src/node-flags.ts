/**
 * Node and V8 flags the server is meant to run with: `npm start`, the bench
 * and the multi-instance tests pass them; a launcher of your own should too
 * (docs/deployment.md). Without them the server works, with longer pauses.
 *
 * `--max-semi-space-size=2` (MB; V8 grows it to 16 by default): a frame and
 * its unit live about a second, and with a large young generation that is
 * long enough to be promoted, so V8 ran a full mark-compact about every
 * second at 66 sessions (5–16 ms stops of the event loop, each one added to
 * the latency of the frames and results it held up). With 2 MB the young
 * generation is swept every ~0.3 s in ~2 ms and no mark-compact ran in 20 s
 * (docs/performance.md).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
