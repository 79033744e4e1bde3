"""The embedded identity provider over https on loopback, for MSAL.

MSAL refuses authorities that are not https, so locally the same app (same routes, same
in-process provider state) is also served by a second uvicorn server with a self-signed
certificate for 127.0.0.1 and localhost, generated into `data_dir/keys/` on first run.
The web sign-in client trusts exactly that certificate file and nothing else.
"""

from __future__ import annotations

import datetime
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cloudcart.core.files import create_private_file_once
from cloudcart.core.settings import Settings

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

HOST = "127.0.0.1"
_CERT_LIFETIME_DAYS = 825  # the longest lifetime some TLS clients accept for a leaf
_STARTUP_TIMEOUT_SECONDS = 15.0
_cert_lock = threading.Lock()


def cert_paths(settings: Settings) -> tuple[Path, Path]:
    """`(certificate, private key)` PEM files of the provider's https endpoint."""
    keys = settings.data_dir / "keys"
    return keys / "dev-idp-tls-cert.pem", keys / "dev-idp-tls-key.pem"


def https_base_url(settings: Settings) -> str:
    """`https://127.0.0.1:<DEV_IDP_HTTPS_PORT>`: where MSAL reaches the embedded provider."""
    return f"https://{HOST}:{settings.dev_idp_https_port}"


def ensure_certificate(settings: Settings) -> tuple[Path, Path]:
    """Create the self-signed loopback certificate on first run; returns its two paths."""
    cert_path, key_path = cert_paths(settings)
    with _cert_lock:
        if cert_path.exists() and key_path.exists():
            return cert_path, key_path
        # Imported here: only `serve` with the embedded identity provider needs them.
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        cert_path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Cloudcart dev identity")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=_CERT_LIFETIME_DAYS))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address(HOST)),
                        x509.DNSName("localhost"),
                    ]
                ),
                critical=False,
            )
            # A self-signed leaf that is also its own trust anchor: OpenSSL wants CA:TRUE
            # on a certificate it is told to trust directly when strict checks are on.
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Key first: a certificate without its key would be reused but unusable.
        key_path.unlink(missing_ok=True)
        cert_path.unlink(missing_ok=True)
        create_private_file_once(key_path, lambda: key_pem)
        create_private_file_once(cert_path, lambda: cert.public_bytes(serialization.Encoding.PEM))
        return cert_path, key_path


@dataclass
class DevIdpHttpsServer:
    """A running https server for the embedded provider; `stop()` shuts it down."""

    base_url: str
    cert_path: Path
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving and wait for the server thread to end."""
        self._server.should_exit = True
        self._thread.join(timeout)


def start_dev_idp_https(settings: Settings, app: ASGIApp) -> DevIdpHttpsServer:
    """Serve `app` over https on 127.0.0.1:DEV_IDP_HTTPS_PORT in a background thread.

    Pass the same app object the main server runs, so both ports share the provider's
    in-process state (authorization codes, refresh tokens). Returns once the port accepts
    connections; raises RuntimeError if the server could not start (port taken, ...).
    """
    import uvicorn

    cert_path, key_path = ensure_certificate(settings)
    config = uvicorn.Config(
        app,
        host=HOST,
        port=settings.dev_idp_https_port,
        ssl_certfile=str(cert_path),
        ssl_keyfile=str(key_path),
        # The main server owns the app's lifespan (adapters are closed once, by it).
        lifespan="off",
        # No log_config/log_level: uvicorn would reconfigure the process's logging (its
        # loggers are shared with the main server) and silence the app's JSON log lines.
        log_config=None,
        access_log=False,
        # MSAL's pooled keep-alive connections never send TLS close_notify; without a bound
        # the shutdown would wait on them.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # No signal handling to disable: uvicorn captures signals only on the main thread.
    thread = threading.Thread(target=server.run, name="dev-idp-https", daemon=True)
    thread.start()
    deadline = time.monotonic() + _STARTUP_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(
                f"the dev identity provider could not serve https on {HOST}:"
                f"{settings.dev_idp_https_port} (is DEV_IDP_HTTPS_PORT free?)"
            )
        time.sleep(0.02)
    return DevIdpHttpsServer(https_base_url(settings), cert_path, server, thread)


def start_for_serve(settings: Settings, app: ASGIApp) -> DevIdpHttpsServer | None:
    """What `cloudcart serve` calls after building the app and before running uvicorn: the
    https listener when the identity adapter is embedded, else None. Stop it on exit."""
    from cloudcart.core.settings import Adapter

    if settings.identity_adapter != Adapter.embedded:
        return None
    return start_dev_idp_https(settings, app)
