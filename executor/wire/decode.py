"""Decoding a dequeued job, and what is left of one that does not decode.

Part of `executor.wire`; see its docstring. `decode_job` is `Job.model_validate` with two
additions the daemon needs:

- a payload that does not decode but still names its job (an integer `id`, and a string `token`
  and `queue` if it has them) raises `MalformedJob`, carrying a `Job` with just that identity, so
  the daemon can mark the job failed instead of leaving it in `processing` until the frontend's
  resetter gives up on it (Sourcegraph's executor only logs the dequeue error);
- every message names the bad field but quotes no value from the payload. SECURITY: the keys of
  `redactedValues` are the job's secret values, so a location inside that map is cut at the
  map; the token and the secrets (in every form `executor.redaction` knows) are also scrubbed
  from the text.

Imports nothing else from the project.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from executor.redaction import Redactor
from executor.wire.base import fold_keys
from executor.wire.job import Job

__all__ = ["MalformedJob", "decode_job", "describe_job_error", "job_identity"]

# Locations below these wire keys end at the key: what lies under them may be a secret.
_SECRET_MAPS = frozenset({"redactedValues"})
# Secrets shorter than this are not scrubbed from messages (they would garble every word).
_MIN_SCRUB = 4


class MalformedJob(ValueError):
    """A dequeued payload that does not decode, but whose job can be identified.

    `job` holds only `id`, `token` and `queue` (for the mark call; never log it whole);
    `reason` names the bad field, e.g. `dockerSteps.0.image: Input should be a valid string`.
    """

    def __init__(self, job: Job, reason: str) -> None:
        super().__init__(reason)
        self.job = job
        self.reason = reason


def decode_job(data: Any) -> Job:
    """The job in a dequeue answer (parsed JSON).

    Raises `MalformedJob` when the payload is invalid but identifies its job, and `ValueError`
    (with a message safe to log) when it does not even do that."""
    try:
        return Job.model_validate(data)
    except ValidationError as err:
        # `from None`: pydantic's own text quotes the input, and the input holds the secrets.
        reason = describe_job_error(err, data)
        identity = job_identity(data)
        if identity is None:
            raise ValueError(reason) from None
        raise MalformedJob(identity, reason) from None


def job_identity(data: Any) -> Job | None:
    """The job a payload names: its `id` must be a JSON integer; `token` and `queue`, when
    present and not `null`, must be strings. `None` when the payload does not say that much."""
    if not isinstance(data, dict):
        return None
    data = fold_keys(Job, data)
    job_id = data.get("id")
    if not isinstance(job_id, int) or isinstance(job_id, bool):
        return None
    token, queue = data.get("token"), data.get("queue")
    if not isinstance(token, str | None) or not isinstance(queue, str | None):
        return None
    return Job(id=job_id, token=token or "", queue=queue or "")


def describe_job_error(err: ValidationError, data: Any = None) -> str:
    """The first problem as `location: message` (plus how many more), with no payload value in
    it: locations stop at `redactedValues`, and secrets found in `data` are scrubbed."""
    problems = err.errors(include_url=False, include_input=False, include_context=False)
    first = problems[0]
    parts: list[str] = []
    for part in first["loc"]:
        parts.append(str(part))
        if part in _SECRET_MAPS:
            break
    message = str(first["msg"]).removeprefix("Value error, ")
    text = f"{'.'.join(parts)}: {message}" if parts else message
    if len(problems) > 1:
        text += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    return Redactor.for_secrets(_secrets(data), "[REDACTED]", min_length=_MIN_SCRUB).redact(text)


def _secrets(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return []
    data = fold_keys(Job, data)
    found = [data.get("token")]
    redacted = data.get("redactedValues")
    if isinstance(redacted, dict):
        found += list(redacted)  # the keys are the secret values; the values replace them
    return [s for s in found if isinstance(s, str)]
