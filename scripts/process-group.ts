/**
 * Process-group control for the local servers our scripts and tests start
 * (`wrangler dev` is started detached, so its workerd child shares its group):
 * signalling the group reaches workerd too, which signalling the leader would not.
 */

export function killGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    // ESRCH: the group is gone already.
  }
}

export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then up to 50 polls for the group to go, then SIGKILL. */
export async function stopGroup(pid: number, pollMs: number): Promise<void> {
  killGroup(pid, "SIGTERM");
  for (let i = 0; i < 50 && groupAlive(pid); i++) await new Promise((r) => setTimeout(r, pollMs));
  if (groupAlive(pid)) killGroup(pid, "SIGKILL");
}
