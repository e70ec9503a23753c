// ```sh blocks of a Markdown page, by section: what the README tests run, and what they check is covered.

export interface DocBlock {
  file: string;
  section: string;
  /** The `### ` heading above the block, if any. */
  subsection: string | null;
  /** Host versions the block is for (from a leading `# OpenClaw 2026.4.x, 2026.5.x` line); empty: all. */
  hosts: string[];
  script: string;
}

/** ```sh blocks under the given `## ` headings (their `### ` subsections included), in order. */
export function shBlocks(file: string, markdown: string, sections: readonly string[]): DocBlock[] {
  const blocks: DocBlock[] = [];
  let section: string | null = null;
  let subsection: string | null = null;
  let lines: string[] | null = null;
  for (const line of markdown.split("\n")) {
    if (lines !== null) {
      if (line.startsWith("```")) {
        const hostLine = /^#\s*OpenClaw\s+(.+)$/.exec(lines[0] ?? "");
        blocks.push({
          file,
          section: section!,
          subsection,
          hosts: hostLine ? hostLine[1]!.split(",").map((h) => h.trim()) : [],
          script: lines.join("\n"),
        });
        lines = null;
      } else lines.push(line);
      continue;
    }
    const heading = /^## (.+)$/.exec(line);
    const subheading = /^### (.+)$/.exec(line);
    if (heading) {
      section = sections.includes(heading[1]!.trim()) ? heading[1]!.trim() : null;
      subsection = null;
    } else if (subheading) subsection = subheading[1]!.trim();
    else if (section !== null && /^```sh\s*$/.test(line)) lines = [];
  }
  return blocks;
}
