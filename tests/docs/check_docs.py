#!/usr/bin/python3
"""The documentation holds together:

1. every relative link of README.md, docs/*.md and the other READMEs of the
   tree (deploy/, tests/) points at a file or folder that exists, and every
   #anchor names a heading of its target (GitHub's slugs: the heading's text
   in lower case, spaces to '-', punctuation other than '-' and '_' dropped,
   "-1", "-2" ... for repeats);
2. every page of docs/ is linked from README.md;
3. the README opens with the two commands: the first installs, builds and
   serves; the second is exactly the command .ci/run runs (CI runs what the
   README says);
4. every metric server/metrics.c exports is in docs/http-api.md's /metrics
   table, and the table names no other;
5. the commands of the docs' code blocks name repository files that exist
   (deploy/, docs/, tests/), programs as build/cli/ or build/server/ paths
   that the build makes, never by a bare name at the start of a line.

Links inside code (fenced blocks and `code spans`) are not links and are
skipped, as are absolute URLs.

usage: check_docs.py SOURCE_ROOT
Prints every problem and exits 1 if there is one; 0 otherwise.
"""
import glob
import os
import re
import sys
import unicodedata

SKIP_DIRS = {".git", "node_modules", "subprojects"}
INLINE_LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"", re.I)
HTML_HREF = re.compile(r"<a\s[^>]*href=\"([^\"]+)\"", re.I)
FENCE = re.compile(r"^ {0,3}(```+|~~~+)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
FIRST_COMMAND_PREFIX = "deploy/install-deps.sh && meson setup build && meson compile -C build && "


def markdown_files(src):
    """README.md, every page of docs/, and every README.md under deploy/ and tests/."""
    out = [os.path.join(src, "README.md")]
    docs = os.path.join(src, "docs")
    if os.path.isdir(docs):
        out += [os.path.join(docs, f) for f in sorted(os.listdir(docs)) if f.endswith(".md")]
    for top in ("deploy", "tests"):
        for d, dirs, files in os.walk(os.path.join(src, top)):
            dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
            out += [os.path.join(d, f) for f in sorted(files) if f == "README.md"]
    return out


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if m:
            mark = m.group(1)
            if fence is None:
                fence = mark[0] * len(mark)
            elif mark.startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, line


def strip_code_spans(line):
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", line)


def slug(heading):
    """GitHub's anchor for a heading's text."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links: their text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in "-_" or cat[0] in "LN" or cat == "Mn":
            out.append(ch)
        elif ch == " ":
            out.append("-")
    return "".join(out)


def anchors(path, cache={}):
    if path not in cache:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        seen, found = {}, set()
        for _, line in prose_lines(text):
            for a in HTML_ANCHOR.findall(line):
                found.add(a)
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            found.add(s if n == 0 else "%s-%d" % (s, n))
        cache[path] = found
    return cache[path]


def links(text):
    """(line number, target) of every link outside code."""
    for n, line in prose_lines(text):
        line = strip_code_spans(line)
        for t in INLINE_LINK.findall(line):
            yield n, t
        for t in HTML_HREF.findall(line):
            yield n, t
        m = REF_DEF.match(line)
        if m:
            yield n, m.group(1)


def check_links(src, files, problems):
    linked_from_readme = set()
    readme = os.path.join(src, "README.md")
    for path in files:
        rel = os.path.relpath(path, src)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for n, target in links(text):
            if not target or SCHEME.match(target) or target.startswith("//"):
                continue
            where = "%s:%d: link '%s'" % (rel, n, target)
            file_part, _, anchor = target.partition("#")
            if file_part.startswith("/"):
                problems.append("%s: an absolute path; links must be relative" % where)
                continue
            dest = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) \
                if file_part else path
            if not os.path.exists(dest):
                problems.append("%s: %s does not exist" % (where, os.path.relpath(dest, src)))
                continue
            if path == readme:
                linked_from_readme.add(dest)
            if not anchor:
                continue
            if os.path.isdir(dest) or not dest.endswith(".md"):
                problems.append("%s: an anchor into %s, which is not a Markdown page"
                                % (where, os.path.relpath(dest, src)))
            elif anchor not in anchors(dest):
                problems.append("%s: %s has no heading whose anchor is '#%s'"
                                % (where, os.path.relpath(dest, src), anchor))
    for page in files:
        if os.path.dirname(page) == os.path.join(src, "docs") and page not in linked_from_readme:
            problems.append("README.md does not link %s: every page of docs/ is reachable from "
                            "the README" % os.path.relpath(page, src))


def code_blocks(text):
    """The contents of the fenced code blocks, in order."""
    blocks, cur, fence = [], None, None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if m and fence is None:
            fence, cur = m.group(1), []
            continue
        if m and fence is not None and m.group(1).startswith(fence):
            blocks.append("\n".join(cur))
            fence = cur = None
            continue
        if cur is not None:
            cur.append(line)
    return blocks


def ci_command(src):
    """The one command line of .ci/run (not a comment, the shebang, set or cd)."""
    with open(os.path.join(src, ".ci", "run"), encoding="utf-8") as f:
        lines = [ln.strip() for ln in f]
    cmds = [ln for ln in lines
            if ln and not ln.startswith("#") and not ln.startswith("set ")
            and not ln.startswith("cd ")]
    return cmds


def check_commands(src, problems):
    with open(os.path.join(src, "README.md"), encoding="utf-8") as f:
        text = f.read()
    blocks = code_blocks(text)
    if len(blocks) < 2:
        problems.append("README.md: fewer than two code blocks; it opens with the two commands")
        return
    first, second = blocks[0], blocks[1]
    for name, block in (("first", first), ("second", second)):
        if "\n" in block.strip():
            problems.append("README.md: the %s command is more than one line:\n%s" % (name, block))
    if not first.strip().startswith(FIRST_COMMAND_PREFIX) or "charrnn-serve" not in first:
        problems.append("README.md: the first command is not install + build + serve "
                        "(expected it to start with '%s' and run charrnn-serve):\n  %s"
                        % (FIRST_COMMAND_PREFIX, first.strip()))
    try:
        cmds = ci_command(src)
    except OSError as e:
        problems.append(".ci/run: %s" % e)
        return
    if len(cmds) != 1:
        problems.append(".ci/run: expected exactly one command line, found %d:\n  %s"
                        % (len(cmds), "\n  ".join(cmds)))
    elif second.strip() != cmds[0]:
        problems.append("README.md's second command is not the command .ci/run runs:\n"
                        "  README.md: %s\n  .ci/run:   %s" % (second.strip(), cmds[0]))


def check_metrics(src, problems):
    """Every metric server/metrics.c exports (each name is a string literal of
    its own there; samples add labels or a value after it) is in
    http-api.md's /metrics table, and the table lists nothing else."""
    with open(os.path.join(src, "server", "metrics.c"), encoding="utf-8") as f:
        names = set(re.findall(r'"(charrnn_[a-z0-9_]+)"', f.read()))
    with open(os.path.join(src, "docs", "http-api.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.find("## GET /metrics")
    end = text.find("\n## ", start + 1)
    table = set(re.findall(r"`(charrnn_[a-z0-9_]+)`", text[start:end if end > 0 else None]))
    if not names:
        problems.append("server/metrics.c: no metric names found (has the registration changed?)")
    for n in sorted(names - table):
        problems.append("docs/http-api.md: the /metrics table misses %s (server/metrics.c)" % n)
    for n in sorted(table - names):
        problems.append("docs/http-api.md: the /metrics table lists %s, which the daemon does "
                        "not export" % n)


def check_command_paths(src, files, problems):
    """The repository files the docs' commands name exist: a path under
    deploy/, docs/ or tests/ in a code block, and a build/DIR/PROGRAM is a
    program DIR/meson.build builds."""
    for path in files:
        with open(path, encoding="utf-8") as f:
            blocks = code_blocks(f.read())
        for block in blocks:
            # kubectl's deploy/NAME is a Deployment; a directory the block makes is not the tree's
            lines = [ln for ln in block.splitlines() if "kubectl" not in ln]
            made = re.findall(r"mkdir -p (\S+)", block)
            for m in re.finditer(r"(?<![\w/~.$-])((?:deploy|docs|tests)/[\w./*@-]*[\w*])",
                                 "\n".join(lines)):
                rel = m.group(1)
                if any(rel == d or rel.startswith(d + "/") for d in made):
                    continue
                if not glob.glob(os.path.join(src, rel)):
                    problems.append("%s: a command names %s, which does not exist"
                                    % (os.path.relpath(path, src), rel))
            for ln in lines:
                if re.match(r"charrnn-(train|sample|convert|serve) ", ln):
                    problems.append("%s: a command runs %s by its bare name; after the README's "
                                    "build it is build/cli/ or build/server/%s"
                                    % (os.path.relpath(path, src), ln.split()[0], ln.split()[0]))
            for m in re.finditer(r"(?<![\w/~.$-])build/(cli|server)/(charrnn-[\w-]+)", block):
                try:
                    with open(os.path.join(src, m.group(1), "meson.build"), encoding="utf-8") as f:
                        built = "'%s'" % m.group(2) in f.read()
                except OSError:
                    built = False
                if not built:
                    problems.append("%s: a command runs %s, which %s/meson.build does not build"
                                    % (os.path.relpath(path, src), m.group(0), m.group(1)))


def main():
    if len(sys.argv) != 2:
        print("usage: check_docs.py SOURCE_ROOT", file=sys.stderr)
        return 2
    src = os.path.realpath(sys.argv[1])
    problems = []
    files = markdown_files(src)
    missing = [f for f in files if not os.path.isfile(f)]
    for f in missing:
        problems.append("%s is missing" % os.path.relpath(f, src))
    files = [f for f in files if f not in missing]
    check_links(src, files, problems)
    check_metrics(src, problems)
    check_command_paths(src, files, problems)
    if not missing:
        check_commands(src, problems)
    for p in problems:
        print("FAIL " + p)
    nlinks = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            nlinks += sum(1 for _ in links(f.read()))
    print("%d pages, %d links, %d problems" % (len(files), nlinks, len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
