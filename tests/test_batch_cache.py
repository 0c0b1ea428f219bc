"""Cache keys against the expected values asserted by Sourcegraph's own Go tests.

Vectors: sourcegraph-public-snapshot ``lib/batches/execution/cache/cache_test.go``
(``TestKeyer_Key``), ``cmd/batcheshelper/run/post_test.go`` (``TestPost``) and src-cli
``lib/batches/execution/cache/cache_test.go`` (``TestKeyer_Key_PerJobEnvVarsIgnored``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from executor.batch.cache import (
    CacheKeyError,
    CacheRepository,
    MountMetadata,
    cache_key,
    cache_key_preimage,
    key_for_workspace,
    mounts_metadata,
    slug_for_repo,
)
from executor.batch.execution import BatchChangeAttributes
from executor.batch.spec import Step

REPO = CacheRepository(
    id="my-repo",
    name="github.com/sourcegraph/src-cli",
    base_ref="refs/heads/f00b4r",
    base_rev="c0mmit",
    file_matches=["baz.go"],
)
MOD_DATE_NS = int(dt.datetime(2022, 1, 2, 3, 5, 6, tzinfo=dt.UTC).timestamp()) * 10**9 + 7


def _steps(*raw: dict[str, Any]) -> list[Step]:
    return [Step.model_validate(r) for r in raw]


KEYER_CASES: list[tuple[str, list[Step], int, dict[str, Any], str]] = [
    ("simple", _steps({"run": "foo"}), 0, {}, "NxWM6tGwnsIG5EoaivFOsg-step-0"),
    (
        "multiple steps",
        _steps({"run": "foo"}, {"run": "bar"}),
        1,
        {},
        "_zR95x8sdhauCYxjtOHCbA-step-1",
    ),
    (
        "step env",
        _steps({"run": "foo", "env": {"FOO": "BAR"}}),
        0,
        {},
        "wKBVeg3u99TBq2U0qxx6cA-step-0",
    ),
    (
        "multiple step envs",
        _steps({"run": "foo", "env": {"FOO": "BAR", "BAZ": "FAZ"}}),
        0,
        {},
        "YO88Tvj7bzCjP5pRag-9bQ-step-0",
    ),
    (
        "null step env",
        _steps({"run": "foo", "env": {"FOO": "BAR", "TEST_EXECUTION_CACHE_KEY_ENV": None}}),
        0,
        {},
        "wFqInfgY7mpK9F4qpW2iew-step-0",
    ),
    (
        "mount metadata",
        _steps({"run": "foo"}),
        0,
        {"mounts": [MountMetadata("/foo/bar", 100, MOD_DATE_NS)]},
        "cpXzPMXfSM2ZmXYW_gAEyw-step-0",
    ),
    (
        "multiple mount metadata",
        _steps({"run": "foo"}),
        0,
        {
            "mounts": [
                MountMetadata("/foo/bar", 100, MOD_DATE_NS),
                MountMetadata("/faz/baz", 100, MOD_DATE_NS),
            ]
        },
        "ZSeYkHFJFD0TYsbKsgVjqQ-step-0",
    ),
    (
        "with global env",
        _steps({"run": "foo", "env": ["SOME_ENV"]}),
        0,
        {"global_env": ["SOME_ENV=FOO", "FAZ=BAZ"]},
        "sBrPdQ_SaeTHL5cNRtl0uA-step-0",
    ),
    (
        "env var not in global env",
        _steps({"run": "foo", "env": ["SOME_ENV"]}),
        0,
        {"global_env": ["FAZ=BAZ"]},
        "cs52Db_-N1MfDw2_0FFulw-step-0",
    ),
    (
        "no global env but forwarded",
        _steps({"run": "foo", "env": ["SOME_ENV"]}),
        0,
        {},
        "cs52Db_-N1MfDw2_0FFulw-step-0",
    ),
]


@pytest.mark.parametrize(
    ("steps", "index", "extra", "expected"),
    [c[1:] for c in KEYER_CASES],
    ids=[c[0] for c in KEYER_CASES],
)
def test_keyer_key_vectors(
    steps: list[Step], index: int, extra: dict[str, Any], expected: str
) -> None:
    assert cache_key(repository=REPO, steps=steps, step_index=index, **extra) == expected


def test_malformed_global_env() -> None:
    with pytest.raises(CacheKeyError) as info:
        cache_key(
            repository=REPO,
            steps=_steps({"run": "foo", "env": ["SOME_ENV"]}),
            step_index=0,
            global_env=["SOME_ENV"],
        )
    assert str(info.value) == (
        'resolving environment for step 0: unable to parse environment variable "SOME_ENV"'
    )


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (_steps({"run": "echo hello world"}), "deZzMP85HWs6lfhWRnMVBA-step-0"),
        (
            _steps({"run": "echo hello world", "files": {"file1.txt": "hello world"}}),
            "4qXjs4-Arh1VpWWfWhqm3A-step-0",
        ),
    ],
    ids=["post Success", "post File Mounts"],
)
def test_batcheshelper_post_vectors(steps: list[Step], expected: str) -> None:
    key = cache_key(
        repository=CacheRepository(),
        steps=steps,
        step_index=0,
        batch_change=BatchChangeAttributes(),
    )
    assert key == expected


def test_preimage_matches_documented_bytes() -> None:
    raw = cache_key_preimage(
        repository=REPO,
        steps=_steps({"run": "foo"}),
        step_index=0,
        mounts=[MountMetadata("/foo/bar", 100, MOD_DATE_NS)],
    )
    assert raw == (
        '{"Repository":{"ID":"my-repo","Name":"github.com/sourcegraph/src-cli",'
        '"BaseRef":"refs/heads/f00b4r","BaseRev":"c0mmit","FileMatches":["baz.go"]},'
        '"Path":"","OnlyFetchWorkspace":false,"Steps":[{"run":"foo","env":{}}],'
        '"BatchChangeAttributes":null,"StepIndex":0,"Environments":[{}],'
        '"MountsMetadata":[{"Path":"/foo/bar","Size":100,'
        '"Modified":"2022-01-02T03:05:06.000000007Z"}]}'
    )


def test_per_job_env_vars_ignored() -> None:
    steps = _steps(
        {
            "run": "foo",
            "env": ["SRC_EXECUTOR_JOB_TOKEN", "SRC_EXECUTOR_JOB_ID", "SRC_EXECUTOR_NAME"],
        }
    )
    repo = CacheRepository(id="r", name="r")
    unset = cache_key(repository=repo, steps=steps, step_index=0)
    resolved = cache_key(
        repository=repo,
        steps=steps,
        step_index=0,
        global_env=[
            "SRC_EXECUTOR_JOB_TOKEN=tok",
            "SRC_EXECUTOR_JOB_ID=42",
            "SRC_EXECUTOR_NAME=executor-abc",
        ],
    )
    assert unset == resolved
    other = cache_key(repository=repo, steps=_steps({"run": "foo"}), step_index=0)
    assert other != unset  # the env definitions themselves still count


def test_key_only_covers_steps_up_to_index_and_if_type_matters() -> None:
    a = _steps({"run": "foo"}, {"run": "bar"})
    b = _steps({"run": "foo"}, {"run": "changed"})
    assert cache_key(repository=REPO, steps=a, step_index=0) == cache_key(
        repository=REPO, steps=b, step_index=0
    )
    assert cache_key(repository=REPO, steps=a, step_index=1) != cache_key(
        repository=REPO, steps=b, step_index=1
    )
    as_bool = _steps({"run": "foo", "if": True})
    as_str = _steps({"run": "foo", "if": "true"})
    assert cache_key(repository=REPO, steps=as_bool, step_index=0) != cache_key(
        repository=REPO, steps=as_str, step_index=0
    )


def test_go_html_escaping_in_preimage() -> None:
    raw = cache_key_preimage(repository=REPO, steps=_steps({"run": "a < b && c > d"}), step_index=0)
    assert '"run":"a \\u003c b \\u0026\\u0026 c \\u003e d"' in raw


def test_key_for_workspace_sorts_file_matches() -> None:
    unsorted = CacheRepository(id="r", name="r", file_matches=["b.go", "a.go"])
    ordered = CacheRepository(id="r", name="r", file_matches=["a.go", "b.go"])
    steps = _steps({"run": "x"})
    assert key_for_workspace(repository=unsorted, steps=steps, step_index=0) == cache_key(
        repository=ordered, steps=steps, step_index=0
    )
    assert cache_key(repository=unsorted, steps=steps, step_index=0) != cache_key(
        repository=ordered, steps=steps, step_index=0
    )


def test_mounts_metadata_walks_directories_in_name_order(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for name in ("sample.sh", "another.sh"):
        (scripts / name).write_bytes(b"x" * 3)
        os.utime(scripts / name, ns=(MOD_DATE_NS, MOD_DATE_NS))
    steps = _steps(
        {"run": "a", "mount": [{"path": "scripts", "mountpoint": "/s"}]},
        {"run": "b", "mount": [{"path": "scripts/sample.sh", "mountpoint": "/x"}]},
    )
    found = mounts_metadata(steps, tmp_path)
    assert [m.path for m in found] == [
        "scripts/another.sh",
        "scripts/sample.sh",
        "scripts/sample.sh",
    ]
    assert {m.size for m in found} == {3}
    assert {m.modified_ns for m in found} == {MOD_DATE_NS}
    with pytest.raises(CacheKeyError, match="does not exist"):
        mounts_metadata(
            _steps({"run": "a", "mount": [{"path": "nope", "mountpoint": "/n"}]}), tmp_path
        )


def test_slug_for_repo() -> None:
    assert slug_for_repo("github.com/sourcegraph/src-cli", "c0mmit") == (
        "github.com-sourcegraph-src-cli-c0mmit"
    )


def test_hash_is_sha256_prefix() -> None:
    raw = cache_key_preimage(repository=REPO, steps=_steps({"run": "foo"}), step_index=0)
    assert hashlib.sha256(raw.encode()).hexdigest().startswith("37158cead1b09ec206e44a1a8af14eb2")
