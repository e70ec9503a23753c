// A Redis URL as it may be shown in messages and status: without its password.
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    // A user name other than the default one can be half of a credential: hide it too.
    if (parsed.username !== "" && parsed.username !== "default") parsed.username = "***";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "(unparseable redis URL)";
  }
}
