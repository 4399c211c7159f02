"""Before TFDS downloads a dataset: can its hosts be reached at all?

TFDS retries every request ten times with backoff (about 3.4 minutes per host when DNS
fails) and Prefect then retries the ingest task: offline, a TFDS recipe took 14 minutes
to end in a raw ``ConnectionError``. A dataset that is not prepared yet is checked first
with one request per host (its URLs are in TFDS's registered checksums), no retries; a
host that cannot be reached fails the ingest once, naming the host and how to prepare
the dataset where there is network (``data.data_dir``). The same message replaces a
connection error TFDS raises for a dataset whose URLs are not registered.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from kerasflow.tasks.failures import DeterministicFailure

CONNECT_TIMEOUT_SECONDS = 5.0


class DownloadUnreachable(DeterministicFailure):
    """A TFDS download whose host cannot be reached from this machine."""


def check_hosts(name: str, urls: Iterable[str]) -> None:
    """One request, no retry, to the first URL of each host; raise DownloadUnreachable on no answer.

    Args:
        name: the TFDS dataset's name (``name[:config][/version]``), for the message.
        urls: the dataset's download URLs; only http and https ones are checked.

    Raises:
        DownloadUnreachable: a host did not answer.
    """
    import requests

    first_url_of_host: dict[str, str] = {}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.hostname:
            first_url_of_host.setdefault(parts.hostname, url)
    for host, url in sorted(first_url_of_host.items()):
        try:
            # Any HTTP answer (even 403 or 405 to a HEAD) means the host is reachable; proxies
            # from the environment apply as they do to TFDS's own requests.
            requests.head(url, timeout=(CONNECT_TIMEOUT_SECONDS, 2 * CONNECT_TIMEOUT_SECONDS), allow_redirects=False)
        except (requests.ConnectionError, requests.Timeout) as error:
            raise unreachable(name, host, error) from None


def unreachable(name: str, host: str, error: BaseException) -> DownloadUnreachable:
    """The one message for a download host that cannot be reached, with what to do offline.

    Args:
        name: the TFDS dataset's name (``name[:config][/version]``).
        host: the host that did not answer.
        error: the connection error, which gives the reason.
    """
    import requests

    text = repr(error)
    if "NameResolution" in text or "Name or service not known" in text:
        reason = "its name does not resolve"
    elif isinstance(error, requests.Timeout):
        reason = f"no answer within {CONNECT_TIMEOUT_SECONDS:g} s"
    else:
        reason = "the connection was refused or dropped"
    base = name.split("/")[0].split(":")[0]
    return DownloadUnreachable(
        f"cannot reach {host} ({reason}) to download TFDS dataset {name!r}, which is not prepared under "
        f"data.data_dir; prepare it where there is network (`tfds build {base} --data_dir DIR`), copy DIR to "
        "this machine or to s3://…, and set data.data_dir to it"
    )


def host_of(error: BaseException) -> str:
    """The host a requests/urllib3 connection error names, else 'its download host'."""
    request = getattr(error, "request", None)
    url = getattr(request, "url", None) or ""
    return urlsplit(url).hostname or "its download host"
