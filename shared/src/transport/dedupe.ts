/** Message-id de-duplication within a time window (JetStream's `duplicate_window`). */
export class DedupeWindow {
  private readonly seen = new Map<string, number>();
  constructor(private readonly windowMs: number) {}

  /** True when `msgId` was already seen inside the window; otherwise records it and returns false. */
  isDuplicate(msgId: string, now = Date.now()): boolean {
    this.prune(now);
    if (this.seen.has(msgId)) return true;
    this.seen.set(msgId, now + this.windowMs);
    return false;
  }

  private prune(now: number): void {
    // Insertion order is expiry order (the window is constant), so stop at the first live entry.
    for (const [id, expiresAt] of this.seen) {
      if (expiresAt > now) break;
      this.seen.delete(id);
    }
  }
}
