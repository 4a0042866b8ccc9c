"""The lab's certificate authority: one CA signs every server and client certificate of the lab.

Keys and certificates are PEM files under ``<state>/pki``; they are made once and reused until
``labctl down --purge``. Nothing here talks to the network.
"""
import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)


def _write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(path):
    with open(path, "rb") as handle:
        return serialization.load_pem_private_key(handle.read(), password=None)


def _load_cert(path):
    with open(path, "rb") as handle:
        return x509.load_pem_x509_certificate(handle.read())


def _covers(cert_path, hosts):
    """True when the certificate at ``cert_path`` names every one of ``hosts``."""
    if not hosts:
        return True
    try:
        names = _load_cert(cert_path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    present = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    present.update(names.get_values_for_type(x509.DNSName))
    return all(str(ipaddress.ip_address(h)) in present if _is_ip(h) else h in present for h in hosts)


def _is_ip(host):
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


class Authority:
    """The lab CA in ``directory``; ``issue`` makes (or reuses) a key pair signed by it."""

    def __init__(self, directory, common_name="segmented-registry lab CA"):
        self.directory = directory
        self.common_name = common_name
        self.cert_path = os.path.join(directory, "ca.crt")
        self.key_path = os.path.join(directory, "ca.key")
        os.makedirs(directory, mode=0o700, exist_ok=True)
        if not (os.path.exists(self.cert_path) and os.path.exists(self.key_path)):
            self._create()
        self.key = _load_key(self.key_path)
        self.cert = _load_cert(self.cert_path)

    def _create(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.common_name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write(self.key_path, _key_pem(key), private=True)
        _write(self.cert_path, cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, name, common_name, *, hosts=(), organizations=(), server=False, client=False):
        """Return (cert_path, key_path) for ``name``, creating them on first use, and again when the
        existing certificate lacks one of ``hosts`` (servers reload their certificate files).

        ``hosts`` become subjectAltNames (IP addresses or DNS names).
        """
        cert_path = os.path.join(self.directory, name + ".crt")
        key_path = os.path.join(self.directory, name + ".key")
        if os.path.exists(cert_path) and os.path.exists(key_path) and _covers(cert_path, hosts):
            return cert_path, key_path
        cert_pem, key_pem = self.issue_pem(common_name, hosts=hosts, organizations=organizations,
                                           server=server, client=client)
        _write(key_path, key_pem, private=True)
        _write(cert_path, cert_pem)
        return cert_path, key_path

    def issue_pem(self, common_name, *, hosts=(), organizations=(), server=False, client=False):
        """A new key pair signed by this CA, in memory: (certificate PEM, PKCS#8 key PEM) as bytes."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        now = datetime.datetime.now(datetime.timezone.utc)
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if hosts:
            names = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def signing_key(self, name):
        """A bare RSA key (service-account token signing); returns its path."""
        path = os.path.join(self.directory, name + ".key")
        if not os.path.exists(path):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            _write(path, _key_pem(key), private=True)
        return path


def write_pem_bundle(path, cert_path, key_path):
    """``cert_path`` then ``key_path`` in one file ``path`` (mode 0600): what HAProxy's ``crt`` reads."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        for part_path in (cert_path, key_path):
            with open(part_path) as part:
                handle.write(part.read())
    return path
