"""Objects in an S3 bucket (AWS S3, MinIO, SeaweedFS, ...) through the minio SDK."""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import parse_qsl, urlsplit

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name

from pikcha.domain.errors import (
    ConfigurationError,
    InfrastructureError,
    NotFoundError,
    PikchaError,
)
from pikcha.ports.objects import ObjectInfo

SETTING = "PIKCHA_OBJECTS"
PART_SIZE = 16 * 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024
_DEFAULT_TYPE = "application/octet-stream"
_CHECKSUM = "sha256"
_CHECKSUM_HEADER = f"x-amz-meta-{_CHECKSUM}"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEYS_HINT = (
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "(or PIKCHA_S3_ACCESS_KEY and PIKCHA_S3_SECRET_KEY)"
)
_REFUSED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}
_BUSY = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"}
_QUERY = {"endpoint", "secure", "region"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class S3ObjectStore:
    """The objects of one bucket; ``location`` gives ``s3://bucket/key``.

    The bucket is made on first use when it does not exist. Each put stores the
    sha256 of the bytes in the user metadata ``x-amz-meta-sha256``; ``stat`` and
    ``list`` report it, and ``get`` checks the bytes against it and raises
    :class:`InfrastructureError` on a mismatch. An object written by another
    tool has no such metadata: ``stat`` and ``list`` then read it whole to hash
    it, and ``get`` returns it unchecked. Objects larger than ``part_size`` are
    sent as multipart uploads, which the store completes or aborts.

    Keys follow the same rules as everywhere (relative ``/``-separated paths,
    at most 1024 bytes), but unlike a folder a bucket holds ``a`` and ``a/b``
    side by side. ``list`` asks for the metadata of each object, one request
    per object, and skips keys no store could have written (``a//b``, ``d/``).

    Connections time out after 3 s and reads after 30 s; failed requests and
    the 5xx answers are retried twice with a short backoff, so an unreachable
    endpoint fails in seconds as a transient :class:`InfrastructureError`.
    Refused keys and a missing bucket are :class:`ConfigurationError`.
    """

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str,
        access_key: str,
        secret_key: str,
        secure: bool = True,
        region: str | None = None,
        session_token: str | None = None,
        part_size: int = PART_SIZE,
        key_source: str = _KEYS_HINT,
    ) -> None:
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError as exc:
            raise ConfigurationError(
                f"{bucket!r} is not a valid S3 bucket name ({exc}); name the "
                f"bucket in {SETTING}=s3://BUCKET?endpoint=HOST:PORT"
            ) from exc
        if part_size < MIN_PART_SIZE:
            raise ConfigurationError(
                f"the S3 part size {part_size} is below the minimum of "
                f"{MIN_PART_SIZE} bytes (5 MiB) that S3 accepts"
            )
        self.bucket = bucket
        self.endpoint = endpoint
        self.part_size = part_size
        self._key_source = key_source
        self._scheme = "https" if secure else "http"
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=3, read=30),
            retries=urllib3.Retry(
                total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        try:
            self._client = Minio(
                endpoint,
                access_key=access_key,
                secret_key=secret_key,
                session_token=session_token,
                secure=secure,
                region=region,
                http_client=http,
            )
        except ValueError as exc:
            raise ConfigurationError(
                f"the S3 endpoint {endpoint!r} is not valid ({exc}); write it as "
                f"HOST:PORT in {SETTING}=s3://{bucket}?endpoint=HOST:PORT"
            ) from exc
        self._region = region
        self._lock = threading.Lock()
        self._bucket_ready = False

    @classmethod
    def from_url(
        cls, url: str, environ: Mapping[str, str] | None = None
    ) -> S3ObjectStore:
        """The store a URL names: ``s3://BUCKET?endpoint=HOST:PORT``.

        Besides ``endpoint`` the query may give ``secure`` and ``region``.

        The keys come from ``environ`` (the process environment by default):
        ``PIKCHA_S3_ACCESS_KEY`` and ``PIKCHA_S3_SECRET_KEY`` when set, else
        ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and, with those,
        ``AWS_SESSION_TOKEN``. Without an endpoint the store talks to AWS S3;
        ``secure`` defaults to true, or to the scheme of an endpoint written as
        ``http://HOST:PORT``.
        """
        env = os.environ if environ is None else environ
        parts = urlsplit(url)
        shown = _shown(url)
        bucket = parts.netloc.rpartition("@")[2]
        if parts.scheme != "s3" or not bucket:
            raise ConfigurationError(
                f"{SETTING}={shown} does not name a bucket; write "
                f"s3://BUCKET?endpoint=HOST:PORT&secure=false"
            )
        if "@" in parts.netloc:
            raise ConfigurationError(
                f"{SETTING}={shown} carries credentials; remove them from the URL "
                f"and set {_KEYS_HINT} instead"
            )
        if parts.path not in {"", "/"} or parts.fragment:
            raise ConfigurationError(
                f"{SETTING}={shown}: a path or fragment after the bucket is not "
                "supported; name only the bucket, s3://BUCKET?endpoint=HOST:PORT"
            )
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - _QUERY)
        if unknown:
            raise ConfigurationError(
                f"{SETTING}={shown}: unknown parameter {unknown[0]!r}; the known "
                f"ones are {', '.join(sorted(_QUERY))}"
            )
        endpoint = query.get("endpoint") or "s3.amazonaws.com"
        secure = True
        written = urlsplit(endpoint) if "://" in endpoint else None
        if written is not None:
            if written.scheme not in {"http", "https"} or written.path not in {"", "/"}:
                raise ConfigurationError(
                    f"{SETTING}={shown}: endpoint {endpoint!r} is not HOST:PORT "
                    "(or http(s)://HOST:PORT)"
                )
            endpoint, secure = written.netloc, written.scheme == "https"
        if "secure" in query:
            secure = _flag(query["secure"], shown)
        if env.get("PIKCHA_S3_ACCESS_KEY") or env.get("PIKCHA_S3_SECRET_KEY"):
            names = ("PIKCHA_S3_ACCESS_KEY", "PIKCHA_S3_SECRET_KEY")
            token = None
        else:
            names = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
            token = env.get("AWS_SESSION_TOKEN") or None
        keys: list[str] = []
        for name in names:
            value = env.get(name)
            if not value:
                raise ConfigurationError(
                    f"{SETTING}={shown} needs S3 keys, but {name} is not set; "
                    f"set {_KEYS_HINT} in the environment"
                )
            keys.append(value)
        access_key, secret_key = keys

        return cls(
            bucket,
            endpoint=endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=query.get("region") or None,
            session_token=token,
            key_source=f"{names[0]} and {names[1]}",
        )

    def put(
        self, key: str, data: bytes, content_type: str = _DEFAULT_TYPE
    ) -> ObjectInfo:
        _check(key)
        data = bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        self._ensure_bucket()
        with self._translated(key, "store"):
            self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata={_CHECKSUM: digest},
                part_size=self.part_size,
            )

        return ObjectInfo(key, len(data), digest, content_type)

    def get(self, key: str) -> bytes:
        data, expected, _ = self._read(key)
        if expected is not None and hashlib.sha256(data).hexdigest() != expected:
            raise InfrastructureError(
                f"object {key!r} in {self._where()} is corrupt: its bytes do not "
                f"match the sha256 {expected} recorded when it was stored; "
                "store it again"
            )

        return data

    def stat(self, key: str) -> ObjectInfo:
        _check(key)
        self._ensure_bucket()
        with self._translated(key, "describe"):
            found = self._client.stat_object(self.bucket, key)
        digest = found.metadata.get(_CHECKSUM_HEADER) if found.metadata else None
        if digest is None or not _HEX64.fullmatch(digest):
            return self._hashed(key)

        return ObjectInfo(
            key, found.size or 0, digest, found.content_type or _DEFAULT_TYPE
        )

    def list(self, prefix: str = "") -> list[ObjectInfo]:
        self._ensure_bucket()
        with self._translated(None, "list"):
            keys = sorted(
                found.object_name
                for found in self._client.list_objects(
                    self.bucket, prefix=prefix or None, recursive=True
                )
                if found.object_name
                and not found.is_dir
                and _is_clean(found.object_name)
            )
        infos: list[ObjectInfo] = []
        for key in keys:
            try:
                infos.append(self.stat(key))
            except NotFoundError:
                # Deleted between the listing and the request for its metadata.
                continue

        return infos

    def location(self, key: str) -> str:
        _check(key)

        return f"s3://{self.bucket}/{key}"

    def _read(self, key: str) -> tuple[bytes, str | None, str]:
        _check(key)
        self._ensure_bucket()
        with self._translated(key, "read"):
            response = self._client.get_object(self.bucket, key)
            try:
                # The stored bytes, even when a writer set a Content-Encoding.
                data = response.read(decode_content=False)
                headers = response.headers
            finally:
                response.close()
                response.release_conn()
        content_type = headers.get("content-type") or _DEFAULT_TYPE

        return data, headers.get(_CHECKSUM_HEADER), content_type

    def _hashed(self, key: str) -> ObjectInfo:
        data, _, content_type = self._read(key)

        return ObjectInfo(
            key, len(data), hashlib.sha256(data).hexdigest(), content_type
        )

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            with self._translated(None, "open the bucket"):
                if not self._client.bucket_exists(self.bucket):
                    self._make_bucket()
            self._bucket_ready = True

    def _make_bucket(self) -> None:
        try:
            self._client.make_bucket(self.bucket, location=self._region)
        except S3Error as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return
            if exc.code == "BucketAlreadyExists":
                raise ConfigurationError(
                    f"the bucket {self.bucket!r} belongs to another account at "
                    f"{self._endpoint_url()}; name another bucket in {SETTING}"
                ) from exc
            if exc.code in _REFUSED:
                raise ConfigurationError(
                    f"the bucket {self.bucket!r} does not exist at "
                    f"{self._endpoint_url()} and the keys from {self._key_source} "
                    f"may not create it ({exc.code}); create the bucket, or name an "
                    f"existing one in {SETTING}"
                ) from exc
            raise

    @contextmanager
    def _translated(self, key: str | None, action: str) -> Iterator[None]:
        try:
            yield
        except PikchaError:
            raise
        except S3Error as exc:
            self._s3_error(exc, key, action)
        except ServerError as exc:
            raise InfrastructureError(
                f"S3 at {self._endpoint_url()} failed to {action} "
                f"{self._what(key)}: HTTP {exc.status_code}; try again later",
                transient=True,
            ) from exc
        except InvalidResponseError as exc:
            raise InfrastructureError(
                f"the endpoint {self._endpoint_url()} did not answer like S3 when "
                f"asked to {action} {self._what(key)}; check the endpoint in "
                f"{SETTING}"
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise self._unreachable(exc, key, action) from exc
        except (MinioException, ValueError) as exc:
            raise InfrastructureError(
                f"S3 at {self._endpoint_url()} failed to {action} "
                f"{self._what(key)}: {exc}"
            ) from exc

    def _s3_error(self, exc: S3Error, key: str | None, action: str) -> NoReturn:
        code = exc.code or "unknown error"
        if code == "NoSuchKey" and key is not None:
            raise NotFoundError(
                f"object {key!r} does not exist in {self._where()}"
            ) from exc
        if code == "NoSuchBucket":
            raise ConfigurationError(
                f"the bucket {self.bucket!r} does not exist at "
                f"{self._endpoint_url()}; create it, or name another bucket in "
                f"{SETTING}"
            ) from exc
        if code in _REFUSED:
            raise ConfigurationError(
                f"S3 at {self._endpoint_url()} refused to {action} "
                f"{self._what(key)} ({code}); check the keys in {self._key_source} "
                f"and the bucket in {SETTING}"
            ) from exc
        raise InfrastructureError(
            f"S3 at {self._endpoint_url()} failed to {action} {self._what(key)}: "
            f"{code}: {exc.message or 'no message'}",
            transient=code in _BUSY,
        ) from exc

    def _unreachable(
        self, exc: urllib3.exceptions.HTTPError, key: str | None, action: str
    ) -> InfrastructureError:
        reason = getattr(exc, "reason", None) or exc
        state, hint = (
            "is unreachable",
            f"check that it runs and the endpoint in {SETTING}",
        )
        if isinstance(reason, urllib3.exceptions.SSLError):
            hint = f"for a plain-HTTP endpoint set secure=false in {SETTING}"
        elif isinstance(reason, urllib3.exceptions.ResponseError):
            state, hint = "keeps failing", "try again later"

        return InfrastructureError(
            f"cannot {action} {self._what(key)}: the S3 endpoint "
            f"{self._endpoint_url()} {state} ({_reason(reason)}); {hint}",
            transient=True,
        )

    def _where(self) -> str:
        return f"bucket {self.bucket!r} at {self._endpoint_url()}"

    def _what(self, key: str | None) -> str:
        return f"object {key!r} in bucket {self.bucket!r}" if key else repr(self.bucket)

    def _endpoint_url(self) -> str:
        return f"{self._scheme}://{self.endpoint}"


def _check(key: str) -> None:
    if not _is_clean(key) or len(key.encode("utf-8")) > 1024:
        raise ConfigurationError(
            f"object key {key!r} is not valid: use a relative '/'-separated path "
            "of at most 1024 bytes, with no empty, '.' or '..' parts, no "
            "backslash and no leading '/'"
        )


def _is_clean(key: str) -> bool:
    return not (
        not key
        or "\\" in key
        or "\x00" in key
        or any(part in {"", ".", ".."} for part in key.split("/"))
    )


def _flag(value: str, shown: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(
        f"{SETTING}={shown}: secure={value!r} is not a yes or no; write "
        "secure=true or secure=false"
    )


def _shown(url: str) -> str:
    """The URL as it may appear in a message: without any credentials."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url

    return parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]).geturl()


def _reason(reason: object) -> str:
    text = str(reason)
    # urllib3 prefixes the connection object's repr; the cause is after it.
    return text.split("): ", 1)[-1] if "): " in text else text
