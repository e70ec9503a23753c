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
  note: string;
}

// Calendar versions YYYY.M.D; `to` is inclusive.
const RANGES: readonly Range[] = [
  {
    from: [2026, 4, 15],
    to: [2026, 5, 999],
    supported: true,
    note: "openai-codex refreshes through global fetch; the guard's fetch hook sees and coordinates every refresh",
  },
  {
    from: [2026, 6, 0],
    to: [9999, 12, 999],
    supported: false,
    note:
      "this host sends the token refresh with its own SSRF-guarded undici fetch, which a global fetch hook never sees, " +
      "so refresh-guard does not attach (measured on 2026.9.6). The host's own per-profile lock serialises agents " +
      "sharing one state dir and profile id; copies under other state dirs or profile ids can still race.",
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

export function assessHost(version: string | null): HostAssessment {
  if (version === null) {
    return { version, supported: true, note: "host version unknown; the fetch hook is attached and used if the host refreshes through global fetch" };
  }
  const parsed = parseHostVersion(version);
  if (parsed === null) return { version, supported: true, note: `unrecognised host version ${version}; attaching the fetch hook anyway` };
  for (const range of RANGES) {
    if (compare(parsed, range.from) >= 0 && compare(parsed, range.to) <= 0) {
      return { version, supported: range.supported, note: range.note };
    }
  }
  return { version, supported: true, note: `OpenClaw ${version} is older than any tested host (2026.4.15); the fetch hook is attached untested` };
}
