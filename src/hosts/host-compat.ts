// Which OpenClaw versions refresh-guard can protect, as measured by the end-to-end tests (see the
// README's compatibility table). The status command and the attach log line report this.

export interface HostAssessment {
  version: string | null;
  supported: boolean;
  /** How the guard attaches, or why it does not. */
  note: string;
}

interface Range {
  from: [number, number, number];
  to: [number, number, number];
  supported: boolean;
  /** The seam this range refreshes through; without it attached the host is not protected. */
  needs?: "host-undici";
  /** The seam the host's token refresh goes through (status names it as the one in use). */
  refreshSeam: "global-fetch" | "host-undici";
  note: string;
}

// Calendar versions YYYY.M.D; `to` is inclusive.
const RANGES: readonly Range[] = [
  {
    from: [2026, 4, 15],
    to: [2026, 5, 999],
    supported: true,
    refreshSeam: "global-fetch",
    note: "openai-codex refreshes through global fetch (global-fetch seam); the guard's fetch hook sees and coordinates every refresh",
  },
  {
    from: [2026, 6, 0],
    to: [2026, 9, 6],
    supported: true,
    needs: "host-undici",
    refreshSeam: "host-undici",
    note:
      "this host sends the token refresh through its own SSRF-guarded undici fetch; the guard wraps that module's fetch " +
      "export (host-undici seam), keeping the host's dispatcher, DNS pinning and proxy handling",
  },
  {
    from: [2026, 9, 7],
    to: [9999, 12, 999],
    supported: true,
    needs: "host-undici",
    refreshSeam: "host-undici",
    note: "newer than any tested host (2026.9.6); the guard wraps the host's undici fetch export as on 2026.6 – 2026.9.6, untested",
  },
];

export function parseHostVersion(version: string): [number, number, number] | null {
  const match = /^(\d{4})\.(\d{1,2})\.(\d{1,3})/.exec(version);
  return match ? [Number(match[1]), Number(match[2]), Number(match[3])] : null;
}

function compare(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < 3; i += 1) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}

/**
 * `seams`: what attached in this process (see detect-seam.ts). A 2026.6+ host counts as supported
 * only when the host-undici seam attached; `why` says why it did not.
 */
export function assessHost(version: string | null, seams?: { attached: readonly string[]; hostUndiciProblem?: string }): HostAssessment {
  const assessed = assessByVersion(version);
  const range = version === null ? undefined : rangeOf(version);
  if (seams !== undefined && range?.needs !== undefined && !seams.attached.includes(range.needs)) {
    return {
      version,
      supported: false,
      note:
        `this host refreshes through its own undici module, which refresh-guard could not wrap (${seams.hostUndiciProblem ?? "unknown reason"}); ` +
        "nothing guards its refreshes and the host runs as without the plugin",
    };
  }
  return assessed;
}

/** True when this version refreshes through the host's own undici (2026.6+): global fetch alone protects nothing. */
export function needsHostUndici(version: string | null): boolean {
  return version !== null && rangeOf(version)?.needs === "host-undici";
}

/** The seam this host's token refresh goes through, where its version says so; null: unknown. */
export function refreshSeamOf(version: string | null): "global-fetch" | "host-undici" | null {
  return version === null ? null : (rangeOf(version)?.refreshSeam ?? null);
}

/**
 * The provider id this host's `openclaw models auth login --provider` accepts for the Codex login.
 * 2026.6+ call it `openai` and refuse `openai-codex` (2026.9.6: "a legacy provider ID; use
 * --provider openai"); 2026.4.x/5.x call it `openai-codex`. Other ids, and unknown versions, stay.
 */
export function loginProviderId(version: string | null, configured: string): string {
  const parsed = version === null ? null : parseHostVersion(version);
  if (parsed === null || (configured !== "openai" && configured !== "openai-codex")) return configured;
  return compare(parsed, [2026, 6, 0]) >= 0 ? "openai" : "openai-codex";
}

function rangeOf(version: string): Range | undefined {
  const parsed = parseHostVersion(version);
  if (parsed === null) return undefined;
  return RANGES.find((range) => compare(parsed, range.from) >= 0 && compare(parsed, range.to) <= 0);
}

function assessByVersion(version: string | null): HostAssessment {
  if (version === null) {
    return { version, supported: true, note: "host version unknown; the guard is attached to every seam found (see seams)" };
  }
  const parsed = parseHostVersion(version);
  if (parsed === null)
    return { version, supported: true, note: `unrecognised host version ${version}; attaching to every seam found anyway` };
  for (const range of RANGES) {
    if (compare(parsed, range.from) >= 0 && compare(parsed, range.to) <= 0) {
      return { version, supported: range.supported, note: range.note };
    }
  }
  return {
    version,
    supported: true,
    note: `OpenClaw ${version} is older than any tested host (2026.4.15); the fetch hook is attached untested`,
  };
}
