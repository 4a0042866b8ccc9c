"""The documentation a newcomer reads: the README stays a front door (at most 300 lines, the two commands
first, a link to every guide), every guide of docs/docsite/extra-docs.yml exists and every guide is listed there, and every
relative link and anchor in the README, CONTRIBUTING.md, the READMEs of the roles, the lab, the bench, AWX and
the token server, and the guides resolves (an anchor into a guide: one of its section titles or labels)."""

import glob
import os
import re

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RST_DIR = os.path.join(REPO, "docs", "docsite", "rst")
MARKDOWN = ["README.md", "CONTRIBUTING.md", "lab/README.md", "bench/README.md", "awx/README.md",
            "components/token-server/README.md",
            *sorted(os.path.relpath(path, REPO) for path in glob.glob(os.path.join(REPO, "roles", "*", "README.md")))]
RST = sorted(os.path.relpath(path, REPO) for path in glob.glob(os.path.join(RST_DIR, "*.rst")))
TWO_COMMANDS = (
    "bash scripts/main.sh   # set up, bring the local lab up, run site.yml (registries, credentials, consumer"
    " clusters, reconcile), push an image, promote it test -> uat -> prod, show what landed where and what each"
    " cluster pulls\n"
    "bash scripts/test.sh   # set up, bring the local lab up, run every test (unit, integration on the lab,"
    " ansible-test sanity, ansible-lint, changelog)\n"
)


def read(relpath):
    with open(os.path.join(REPO, relpath), encoding="utf-8") as handle:
        return handle.read()


def without_code(markdown):
    """The Markdown outside fenced code blocks and inline code."""
    text = re.sub(r"^ *```.*?^ *```", "", markdown, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown):
    seen, result = {}, set()
    for match in re.finditer(r"^#{1,6} (.+)$", without_code(markdown), flags=re.M):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def rst_anchors(rst):
    """The anchors of a reStructuredText file as docutils (and GitHub) make them: each section title's
    id (lower case, every run of other characters than letters and digits one hyphen) and each label."""
    titles = re.findall(r"^([^\s][^\n]*)\n([=\-~^*\"+#])\2+[ \t]*$", rst, flags=re.M)
    ids = {re.sub(r"[^a-z0-9]+", "-", title.strip().lower()).strip("-") for title, _underline in titles}
    return ids | set(re.findall(r"^\.\. _([^:]+):\s*$", rst, flags=re.M))


def is_external(target):
    return re.match(r"^[a-z][a-z0-9+.-]*:", target) is not None


def markdown_links(relpath):
    return re.findall(r"\]\(([^)\s]+)\)", without_code(read(relpath)))


def rst_links(relpath):
    text = re.sub(r"``[^`]*``", "", read(relpath))
    return re.findall(r"`[^`<]*<([^>`]+)>`__?", text)


def rst_labels():
    labels = set()
    for relpath in RST:
        labels.update(re.findall(r"^\.\. _([^:]+):\s*$", read(relpath), flags=re.M))
    return labels


def broken_link(relpath, target):
    """Why a relative link of the file at relpath does not resolve, or None."""
    path, _sep, anchor = target.partition("#")
    base = os.path.dirname(os.path.join(REPO, relpath))
    resolved = os.path.normpath(os.path.join(base, path)) if path else os.path.join(REPO, relpath)
    if not os.path.exists(resolved):
        return f"{relpath}: {target}: {os.path.relpath(resolved, REPO)} does not exist"
    if anchor and resolved.endswith(".md") and anchor not in anchors(read(os.path.relpath(resolved, REPO))):
        return f"{relpath}: {target}: no heading with the anchor #{anchor}"
    if anchor and resolved.endswith(".rst") and anchor not in rst_anchors(read(os.path.relpath(resolved, REPO))):
        return f"{relpath}: {target}: no section title or label with the anchor #{anchor}"
    return None


def test_readme_is_a_front_door():
    lines = read("README.md").splitlines()
    assert len(lines) <= 300, f"README.md has {len(lines)} lines, more than 300: move reference into a guide under docs/docsite/rst/"


def test_readme_starts_with_the_two_commands():
    first = re.search(r"^```[^\n]*\n(.*?)^```", read("README.md"), flags=re.S | re.M)
    assert first is not None and first.group(1) == TWO_COMMANDS, "the README's first code block must be the two commands"


def test_extra_docs_lists_every_guide():
    with open(os.path.join(REPO, "docs", "docsite", "extra-docs.yml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    listed = [name for section in config["sections"] for name in section["toctree"]]
    present = [os.path.splitext(os.path.basename(path))[0] for path in RST]
    assert sorted(listed) == sorted(set(listed)), "a guide is listed twice in extra-docs.yml"
    assert sorted(listed) == sorted(present), "extra-docs.yml and docs/docsite/rst/*.rst differ"


def test_readme_links_every_guide():
    linked = {os.path.normpath(target.partition("#")[0]) for target in markdown_links("README.md")}
    missing = [relpath for relpath in RST if relpath not in linked]
    assert not missing, f"README.md ('Guides') does not link {', '.join(missing)}"


@pytest.mark.parametrize("relpath", MARKDOWN)
def test_markdown_links_resolve(relpath):
    problems = [broken_link(relpath, target) for target in markdown_links(relpath) if not is_external(target)]
    assert not [problem for problem in problems if problem], problems


@pytest.mark.parametrize("relpath", RST)
def test_rst_links_and_references_resolve(relpath):
    problems = [broken_link(relpath, target) for target in rst_links(relpath) if not is_external(target)]
    labels = rst_labels()
    text = re.sub(r"``[^`]*``", "", read(relpath))
    for ref in re.findall(r":ref:`(?:[^`<]*<)?([^>`]+)>?`", text):
        if ref not in labels:
            problems.append(f"{relpath}: :ref: {ref} is not a label of docs/docsite/rst")
    assert not [problem for problem in problems if problem], problems
