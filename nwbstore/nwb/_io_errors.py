"""nwbstore's errors for what object storage refuses (credentials) around an NWB write."""

from __future__ import annotations

from collections.abc import Callable

from nwbstore.errors import AccessDeniedError

__all__ = ["denied_as_nwbstore"]


def _is_denied(err: BaseException) -> bool:
    if isinstance(err, PermissionError):
        return True
    name = type(err).__name__
    text = str(err)
    return name in ("NoCredentialsError", "PartialCredentialsError") or any(
        code in text for code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch")
    )


def denied_as_nwbstore[T](url: str, call: Callable[[], T]) -> T:
    """Run ``call``; a refusal for lack of (valid) credentials becomes ``AccessDeniedError``."""
    try:
        return call()
    except AccessDeniedError:
        raise
    except Exception as err:
        if not _is_denied(err):
            raise
        raise AccessDeniedError(
            f"{url}: object storage refused the request ({type(err).__name__}). Give credentials "
            "that may write there: storage_options={'key': ..., 'secret': ...} (or 'profile'), "
            "or the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables"
        ) from err
