"""Ed25519 signing keys: PEM PKCS#8 private keys (file mode 0600) and PEM SPKI public keys.

The private key is written unencrypted and protected by its file mode; keep it where only the
signer can read it (or in a secrets manager, writing it to a 0600 file only to sign). A bad
key file raises ConfigError naming it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from medsafe.errors import ConfigError

__all__ = [
    "load_private_key",
    "load_public_key",
    "new_keypair",
    "private_key_warning",
    "signature_valid",
]


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``mode`` (never replacing a file) and write ``data`` to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    os.chmod(path, mode)  # the umask may have taken bits away, never added


def new_keypair(prefix: Path | str) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair to ``PREFIX.key`` (0600) and ``PREFIX.pub`` (0644).

    Refuses (ConfigError) when either file exists or the folder is missing; nothing is left
    half-written.
    """
    key_path = Path(f"{prefix}.key")
    pub_path = Path(f"{prefix}.pub")
    for path in (key_path, pub_path):
        if path.exists() or path.is_symlink():
            raise ConfigError(f"{path}: exists; refusing to overwrite a key (choose a new --out)")
    if not key_path.absolute().parent.is_dir():
        raise ConfigError(f"{key_path}: no such folder {key_path.absolute().parent}")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        _write_new(key_path, private_pem, 0o600)
        try:
            _write_new(pub_path, public_pem, 0o644)
        except BaseException:
            key_path.unlink(missing_ok=True)
            raise
    except FileExistsError as exc:
        raise ConfigError(f"{exc.filename}: exists; refusing to overwrite a key") from None
    except OSError as exc:
        raise ConfigError(f"{exc.filename or key_path}: cannot write: {exc.strerror}") from None
    return key_path, pub_path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in PEM PKCS#8 file ``path``; ConfigError naming it otherwise."""
    data = _read(path, "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not an unencrypted PEM PKCS#8 private key ({exc}); make one with "
            "`medsafe keys new`"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path}: a {type(key).__name__}, not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in PEM SPKI file ``path``; ConfigError naming it otherwise."""
    data = _read(path, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path}: a {type(key).__name__}, not an Ed25519 public key")
    return key


def private_key_warning(path: Path) -> str | None:
    """A warning when the private key file can be read by others than its owner."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"{path}: mode {mode:04o} lets others read the signing key; chmod 600 it"
    return None


def signature_valid(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    """Whether ``signature`` is ``key``'s Ed25519 signature of exactly ``data``."""
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
