#!/usr/bin/env python3
"""Every relative link and anchor in the docs resolves.

For each Markdown file given (default: README.md, SECURITY.md, docs/*.md, benches/README.md,
certs/README.md), every link and image outside code — `[text](target)`, `![alt](target)`,
`[name]: target` — that is not a URL (`scheme:`) must name a file or directory that exists,
relative to the file; a `#anchor` (alone: the same file) must be a heading of the Markdown file
it names, by GitHub's rule: the heading's text, lower case, every character but letters, digits,
`_`, `-` and spaces dropped, spaces as `-`, and `-1`, `-2`, … after repeats; `<a id=…>` and
`<a name=…>` count too.

    python3 tests/doc_links.py [FILE.md …]     # exit 1 with FILE:LINE: problem for each
    python3 tests/doc_links.py --self-test     # shows that a broken link and anchor are found
"""

import glob
import os
import re
import sys
import tempfile

DEFAULT = ["README.md", "SECURITY.md", "benches/README.md", "certs/README.md"]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def slug(text):
    """GitHub's anchor of a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose_lines(path, keep_code=False):
    """(line number, text) of each line outside fenced code, inline code removed unless kept."""
    in_code = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                in_code = not in_code
                continue
            if not in_code:
                line = line.rstrip("\n")
                yield n, line if keep_code else INLINE_CODE.sub("", line)


def anchors(path, cache={}):
    if path not in cache:
        found, seen = set(), {}
        for _, line in prose_lines(path, keep_code=True):
            m = HEADING.match(line)
            if m:
                a = slug(m.group(2))
                n = seen.get(a, 0)
                seen[a] = n + 1
                found.add(a if n == 0 else "%s-%d" % (a, n))
            found.update(HTML_ANCHOR.findall(line))
        cache[path] = found
    return cache[path]


def check(files):
    problems = []
    for path in files:
        for n, line in prose_lines(path):
            targets = LINK.findall(line)
            m = REFERENCE.match(line)
            if m:
                targets.append(m.group(1))
            for target in targets:
                if not target or SCHEME.match(target):
                    continue
                file_part, _, anchor = target.partition("#")
                dest = (
                    os.path.normpath(os.path.join(os.path.dirname(path), file_part))
                    if file_part
                    else path
                )
                if not os.path.exists(dest):
                    problems.append("%s:%d: %s: no file %s" % (path, n, target, dest))
                elif anchor and dest.endswith(".md") and anchor not in anchors(dest):
                    problems.append(
                        "%s:%d: %s: no heading of %s has the anchor #%s"
                        % (path, n, target, dest, anchor)
                    )
    return problems


def self_test():
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(os.path.join(d, "docs"))
        with open(os.path.join(d, "docs", "a.md"), "w") as f:
            f.write(
                "# A page\n\n## `tls.profile`: the profiles, in order\n\n## Repeat\n## Repeat\n"
                "[ok](#tlsprofile-the-profiles-in-order) [ok](#repeat-1) [ok](../README.md#top)\n"
                "```\n[in code](missing.md)\n```\n`[inline](missing.md)` [url](https://x/y#z)\n"
            )
        with open(os.path.join(d, "README.md"), "w") as f:
            f.write(
                "# Top\n![shot](docs/a.md) [ok](docs/a.md#a-page)\n"
                "[gone](docs/b.md) [bad anchor](docs/a.md#no-such-heading)\n"
                "[ref]: docs/c.md\n"
            )
        cwd = os.getcwd()
        os.chdir(d)
        try:
            problems = check(["README.md", "docs/a.md"])
        finally:
            os.chdir(cwd)
    expected = [
        "README.md:3: docs/b.md: no file docs/b.md",
        "README.md:3: docs/a.md#no-such-heading: no heading of docs/a.md has the anchor #no-such-heading",
        "README.md:4: docs/c.md: no file docs/c.md",
    ]
    if problems != expected:
        print("doc_links self-test failed:\n  got      %r\n  expected %r" % (problems, expected))
        return 1
    print("doc_links self-test: broken links and anchors are found")
    return 0


def main(args):
    if args == ["--self-test"]:
        return self_test()
    files = args or DEFAULT + sorted(glob.glob("docs/*.md"))
    files = [f for f in files if os.path.exists(f)]
    problems = check(files)
    for p in problems:
        print(p)
    if problems:
        return 1
    print("every relative link and anchor in %d files resolves" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
