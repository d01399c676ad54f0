export interface TierCount {
  passed: number;
  failed: number;
  skipped: number;
  note?: string;
}
export function countUnittest(text: string, status: number | null): TierCount;
