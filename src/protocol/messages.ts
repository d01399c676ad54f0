/** A message the server sends to a client (JSON text frame). */
export type OutboundMessage = Record<string, unknown> & { type: string };
