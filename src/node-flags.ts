/**
 * Node and V8 flags the server is meant to run with: `npm start`, the bench
 * and the multi-instance tests pass them; a launcher of your own should too
 * (docs/deployment.md). Without them the server works, with longer pauses.
 *
 * `--max-semi-space-size=2` (MB; V8 grows it up to 16 by default): a unit
 * and what goes with it live about a second, which a 16-MB young generation
 * promotes in bulk, and V8 starts a full mark-compact whenever the old
 * generation is within a young generation of its limit: at 66 sessions it
 * ran one every second or so, each stopping the event loop for 5–16 ms, held
 * up frames and results included. With 2 MB (and the frame pool) the young
 * generation is swept every ~0.3 s in ~2 ms and no mark-compact ran in 20 s
 * (docs/performance.md, finding 6).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
