// A Redis URL as it may be shown in messages and status: without its password, and without any
// query (ioredis reads options, a password among them, from the query string).

/** Query parameters that would carry a credential; refused so secrets live in passwordEnv/usernameEnv only. */
const CREDENTIAL_PARAMS = new Set(["password", "pass", "username", "user", "auth", "token"]);

export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.password = "";
    // A user name other than the default one can be half of a credential: hide it too.
    if (parsed.username !== "" && parsed.username !== "default") parsed.username = "***";
    const hidden = parsed.search !== "";
    parsed.search = "";
    return `${parsed.toString().replace(/\/$/, "")}${hidden ? "?***" : ""}`;
  } catch {
    return "(unparseable redis URL)";
  }
}

/** The name of a credential carried in the URL's query (`?password=`), or undefined. */
export function credentialInQuery(url: string): string | undefined {
  try {
    for (const name of new URL(url).searchParams.keys()) if (CREDENTIAL_PARAMS.has(name.toLowerCase())) return name;
  } catch {
    // Not a URL: the config parser says so.
  }
  return undefined;
}

/** `text` with every spelling of `url` replaced by its redacted form. */
export function redactIn(text: string, url: string): string {
  const shown = redactUrl(url);
  let out = text.replaceAll(url, shown);
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") out = out.replaceAll(decodeURIComponent(parsed.password), "***").replaceAll(parsed.password, "***");
    for (const value of parsed.searchParams.values()) if (value.length >= 4) out = out.replaceAll(value, "***");
  } catch {
    // Unparseable: nothing more to find.
  }
  return out;
}
