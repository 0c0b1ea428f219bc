"""`repositoriesMatchingQuery` in Sourcegraph's query language, end to end: real-world style
specs applied over the real admin API of a real sandbox hosting real git repositories, then
the workspaces it resolved (repository, file matches) or the error it answered."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures_sandbox import _git

from executor.sandbox.search.evaluate import search_repositories
from executor.sandbox.workspaces import HostedRepo

REPOS: dict[str, dict[str, str]] = {
    "github.com/acme/api-go": {
        "go.mod": "module github.com/acme/api-go\n\ngo 1.22\n",
        "main.go": 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("hello") }\n',
        "docker-compose.yml": 'services:\n  api:\n    entrypoint: ["sh", "-c"]\n',
        "README.md": "# api\n\nDeprecated: use the v2 client.\n",
    },
    "github.com/acme/infra": {
        "main.tf": 'resource "aws_s3_bucket" "logs" {\n  bucket = "acme-logs"\n}\n',
        "README.md": "# infra\n\nTerraform for acme.\n",
    },
    "github.com/acme/web": {
        "package.json": '{\n  "dependencies": {\n    "bootstrap": "^4.6.0"\n  }\n}\n',
        "src/app.ts": "export const greeting: string = 'hello';\n",
        ".github/workflows/ci.yml": "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n",
    },
    "github.com/acme/docs": {
        "docs/index.md": "# Docs\n\nThe v2 client replaces the old one.\n",
        "mkdocs.yml": "site_name: acme\n",
    },
}

SPEC = """
name: search
{version}
on:
  - repositoriesMatchingQuery: {query}
steps:
  - run: "true"
    container: executor-busybox:latest
changesetTemplate:
  title: t
  branch: b
  commit:
    message: m
"""


def _make_repo(path: Path, files: dict[str, str]) -> None:
    path.mkdir(parents=True)
    _git(path, "init", "--quiet", "--initial-branch=main")
    for rel, text in files.items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    _git(path, "add", "--all")
    _git(path, "commit", "--quiet", "-m", "initial")


@pytest.fixture
def acme(sandbox: Any, tmp_path: Path) -> Any:
    for name, files in REPOS.items():
        path = tmp_path / name.replace("/", "_")
        _make_repo(path, files)
        if name.endswith("/web"):  # a second branch for rev:
            _git(path, "checkout", "--quiet", "-b", "bootstrap-5")
            (path / "package.json").write_text('{"dependencies": {"bootstrap": "^5.3.0"}}\n')
            _git(path, "commit", "--quiet", "-am", "bootstrap 5")
            _git(path, "checkout", "--quiet", "main")
        sandbox.add_repo(name, path)
    return sandbox


def _apply(box: Any, query: str, version: int | None = None) -> Any:
    head = f"version: {version}" if version else ""
    spec = SPEC.format(query=json.dumps(query), version=head)
    return box.client.post("/.sandbox/batches", headers=box.admin_headers, json={"spec": spec})


def _workspaces(box: Any, query: str, version: int | None = None) -> list[tuple[str, list[str]]]:
    response = _apply(box, query, version)
    assert response.status_code == 201, response.text
    got = [
        (w["repository"].removeprefix("github.com/acme/"), w["searchResultPaths"])
        for w in response.json()["workspaces"]
    ]
    return got


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lang:go", [("api-go", ["main.go"])]),
        ("lang:HCL", [("infra", ["main.tf"])]),
        ("lang:typescript", [("web", ["src/app.ts"])]),
        ("lang:markdown", [("api-go", ["README.md"]), ("docs", ["docs/index.md"]),
                           ("infra", ["README.md"])]),
        ("lang:YAML", [("api-go", ["docker-compose.yml"]), ("docs", ["mkdocs.yml"]),
                       ("web", [".github/workflows/ci.yml"])]),
        ("language:go fmt.Println", [("api-go", ["main.go"])]),
        ("-lang:markdown -lang:yaml r:acme/(api|docs)", [("api-go", ["go.mod", "main.go"])]),
        ("path:package.json", [("web", ["package.json"])]),
        ("r:infra", [("infra", [])]),
        ("repo:acme -repo:web -repo:docs", [("api-go", []), ("infra", [])]),
        ("hello OR terraform", [("api-go", ["main.go"]), ("infra", ["README.md"]),
                                ("web", ["src/app.ts"])]),
        ("v2 client or bucket", [("api-go", ["README.md"]), ("docs", ["docs/index.md"]),
                                   ("infra", ["main.tf"])]),
        ("v2 AND NOT deprecated", [("docs", ["docs/index.md"])]),
        ('f:package.json "bootstrap": ".?4 patterntype:regexp', [("web", ["package.json"])]),
        ('f:package.json "bootstrap": "\\^5 patterntype:regexp rev:bootstrap-5 r:web',
         [("web", ["package.json"])]),
        ("file:docker-compose entrypoint: [\"sh\"", [("api-go", ["docker-compose.yml"])]),
        ("content:\"v2 client\" select:repo", [("api-go", []), ("docs", [])]),
        ("Deprecated case:yes", [("api-go", ["README.md"])]),
        ("DEPRECATED case:yes", []),
        ("type:repo acme/(web|docs)$ patterntype:regexp", [("docs", []), ("web", [])]),
        ("type:path workflows", [("web", [".github/workflows/ci.yml"])]),
        ("repo:has.file(path:go.mod) count:all", [("api-go", [])]),
        ("lang:markdown count:2", [("api-go", ["README.md"]), ("docs", ["docs/index.md"])]),
        ("fork:only lang:go", []),
        ("visibility:public archived:no lang:go", [("api-go", ["main.go"])]),
    ],
)  # fmt: skip
def test_real_world_queries_resolve(acme: Any, query: str, expected: list[Any]) -> None:
    assert _workspaces(acme, query) == expected


def test_rev_names_the_branch(acme: Any) -> None:
    response = _apply(acme, "repo:acme/web@bootstrap-5 file:package.json")
    assert response.status_code == 201, response.text
    [workspace] = response.json()["workspaces"]
    assert workspace["branch"] == "refs/heads/bootstrap-5"


def test_spec_version_2_defaults_to_keyword_search(acme: Any) -> None:
    # standard (version 1): "client deprecated" is one phrase; keyword (version 2): both words.
    assert _workspaces(acme, "client deprecated") == []
    assert _workspaces(acme, "client deprecated", version=2) == [("api-go", ["README.md"])]


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("lang:klingon", 'unknown language: "klingon"'),
        ('repo:"acme', 'unterminated literal: expected "'),
        ("foo)", "unsupported expression. The combination of parentheses in the query have an"
                 " unclear meaning. Try using the content: filter to quote patterns that contain"
                 " parentheses"),
        ("not (a or b)", "it looks like you tried to use an expression after NOT. The NOT"
                         " operator can only be used with simple search patterns or filters,"
                         " and is not supported for expressions or subqueries"),
        ("patterntype:structural fmt.Println(...)", "patterntype:structural needs comby, which"
         " the sandbox does not have; use patterntype:regexp or a literal pattern"),
        ("type:diff fix", "type:diff needs Sourcegraph's commit search, which the sandbox does"
                          " not have"),
        ("count:many x", "field count has value many, many is not a number"),
        ("case:yes case:no x", 'field "case" may not be used more than once'),
        ("fork:maybe x", 'invalid value "maybe" for field "fork". Valid values are: yes, only,'
                         " no"),
        ("rev:main x", "invalid syntax. The query contains `rev:` without `repo:`. Add a"
                       " `repo:` filter and try again"),
        ("author:me x", "your query contains the field 'author', which requires type:commit or"
                        " type:diff in the query"),
    ],
)  # fmt: skip
def test_bad_queries_get_sourcegraphs_message(acme: Any, query: str, error: str) -> None:
    response = _apply(acme, query)
    assert response.status_code == 400
    assert response.json()["error"] == error


def test_a_thousand_repositories_resolve_promptly(sandbox: Any, tmp_path: Path) -> None:
    template = tmp_path / "template"
    _make_repo(template, REPOS["github.com/acme/api-go"])
    store = sandbox.store
    hosted = []
    for i in range(1000):
        path = tmp_path / "many" / f"repo-{i:04d}"
        shutil.copytree(template, path)
        name = f"github.com/many/repo-{i:04d}"
        store.add_repo(name, str(path))
        hosted.append(HostedRepo(name, str(path), i + 1))
    started = time.monotonic()
    found = search_repositories("repo:^github\\.com/many/repo-00[0-4] lang:go fmt", hosted)
    elapsed = time.monotonic() - started
    assert [m.repo.name for m in found] == [f"github.com/many/repo-{i:04d}" for i in range(50)]
    assert all(m.files == {"main.go"} for m in found)
    # Generous bound: 50 repositories searched, 950 dropped by name without a git call.
    assert elapsed < 120, elapsed
    response = _apply(sandbox, "repo:^github\\.com/many/repo-0999$ deprecated")
    assert response.status_code == 201, response.text
    assert [w["repository"] for w in response.json()["workspaces"]] == ["github.com/many/repo-0999"]
