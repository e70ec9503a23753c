import { describe, expect, it } from "vitest";

import { type SiblingCredential, staticSiblingSource } from "../../src/siblings/sibling-source.ts";

describe("staticSiblingSource", () => {
  it("has its name and loads what the function returns at each call", async () => {
    let credentials: SiblingCredential[] = [{ source: "a", refreshToken: "rt_1" }];
    const source = staticSiblingSource("fixed", () => credentials);
    expect(source.name).toBe("fixed");
    expect(await source.load(() => undefined)).toEqual([{ source: "a", refreshToken: "rt_1" }]);
    credentials = [{ source: "b", refreshToken: "rt_2" }];
    expect(await source.load(() => undefined)).toEqual([{ source: "b", refreshToken: "rt_2" }]);
  });
});
