# -*- test-case-name: tests.bitcoin.test_address -*-
"""
Payout addresses to output scripts and back: base58check P2PKH/P2SH, bech32
(BIP173) witness v0, bech32m (BIP350) witness v1+ (P2TR and future versions).

The seed took bytes 1..20 of any base58 string without checking the checksum,
guessed P2SH from two hard-coded version bytes and knew no bech32 (ref
§12.11); a typo in a payout address silently sent block rewards to a script
nobody controls.  Here every check is made, against the configured network,
and the error says which one failed.  Encoders are implemented here (small
and pure) rather than imported, so this layer has no side effects on import.
"""

from viabtc.bitcoin.hashing import sha256d
from viabtc.bitcoin.network import NETWORKS


class InvalidAddress(ValueError):
    """An address that is malformed or does not belong to the network."""


_B58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58_ALPHABET)}

_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32_CHARSET)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_BECH32_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


# -- base58check ------------------------------------------------------------


def b58encode(data):
    """Base58 text of ``data`` (leading zero bytes become leading '1's)."""
    n = int.from_bytes(data, "big")
    chars = []
    while n:
        n, rem = divmod(n, 58)
        chars.append(_B58_ALPHABET[rem])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(chars))


def b58decode(text):
    """Bytes of base58 ``text``; ``InvalidAddress`` on a foreign character."""
    n = 0
    for c in text:
        try:
            n = n * 58 + _B58_INDEX[c]
        except KeyError:
            raise InvalidAddress(f"invalid base58 character {c!r}") from None
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + n.to_bytes((n.bit_length() + 7) // 8, "big")


def b58check_encode(payload):
    """Base58 of ``payload`` with its 4-byte SHA-256d checksum."""
    return b58encode(payload + sha256d(payload)[:4])


def b58check_decode(text):
    """The payload of base58check ``text``; ``InvalidAddress`` if the checksum fails."""
    raw = b58decode(text)
    if len(raw) < 5:
        raise InvalidAddress("base58check data too short")
    payload, checksum = raw[:-4], raw[-4:]
    if sha256d(payload)[:4] != checksum:
        raise InvalidAddress("bad base58check checksum")
    return payload


# -- bech32 / bech32m -------------------------------------------------------


def _polymod(values):
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            if (top >> i) & 1:
                chk ^= _BECH32_GENERATOR[i]
    return chk


def _hrp_expand(hrp):
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convert_bits(data, from_bits, to_bits, pad):
    """Regroup bits; ``None`` if the padding is not what BIP173 allows."""
    acc = 0
    bits = 0
    out = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (to_bits - bits)) & maxv)
    elif bits >= from_bits or ((acc << (to_bits - bits)) & maxv):
        return None
    return out


def bech32_decode(text):
    """
    Split a bech32 or bech32m string into ``(hrp, data, const)`` where
    ``data`` excludes the checksum and ``const`` says which checksum matched.
    ``InvalidAddress`` names the first rule broken.
    """
    if any(ord(c) < 33 or ord(c) > 126 for c in text):
        raise InvalidAddress("character out of range for bech32")
    if text.lower() != text and text.upper() != text:
        raise InvalidAddress("mixed upper and lower case in bech32 address")
    if len(text) > 90:
        raise InvalidAddress(f"bech32 address too long ({len(text)} > 90 characters)")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1:
        raise InvalidAddress("bech32 address has no human-readable part")
    if sep + 7 > len(text):
        raise InvalidAddress("bech32 checksum too short")
    hrp = text[:sep]
    try:
        data = [_BECH32_INDEX[c] for c in text[sep + 1 :]]
    except KeyError as e:
        raise InvalidAddress(f"invalid bech32 character {e.args[0]!r}") from None
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (_BECH32_CONST, _BECH32M_CONST):
        raise InvalidAddress("bad bech32 checksum")
    return hrp, data[:-6], const


def bech32_encode(hrp, data, const):
    """Encode 5-bit ``data`` under ``hrp`` with a bech32 or bech32m checksum."""
    mod = _polymod(_hrp_expand(hrp) + list(data) + [0] * 6) ^ const
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[d] for d in list(data) + checksum)


def decode_segwit_address(text):
    """
    ``(hrp, witness_version, program)`` of a segwit address, with every BIP173
    and BIP350 rule checked (including bech32 for v0 and bech32m for v1+).
    """
    hrp, data, const = bech32_decode(text)
    if not data:
        raise InvalidAddress("empty bech32 data section")
    version = data[0]
    if version > 16:
        raise InvalidAddress(f"invalid witness version {version}")
    program = _convert_bits(data[1:], 5, 8, pad=False)
    if program is None:
        raise InvalidAddress("invalid padding in bech32 data")
    if not 2 <= len(program) <= 40:
        raise InvalidAddress(f"bad witness program length {len(program)} (must be 2..40)")
    if version == 0 and len(program) not in (20, 32):
        raise InvalidAddress(f"bad witness program length {len(program)} for version 0 (20 or 32)")
    if version == 0 and const != _BECH32_CONST:
        raise InvalidAddress("witness version 0 address must use bech32, not bech32m")
    if version != 0 and const != _BECH32M_CONST:
        raise InvalidAddress(f"witness version {version} address must use bech32m, not bech32")
    return hrp, version, bytes(program)


def encode_segwit_address(hrp, version, program):
    """The bech32 (v0) or bech32m (v1+) address of a witness program."""
    if not 0 <= version <= 16:
        raise ValueError(f"invalid witness version {version}")
    if not 2 <= len(program) <= 40 or (version == 0 and len(program) not in (20, 32)):
        raise ValueError(f"bad witness program length {len(program)} for version {version}")
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    return bech32_encode(hrp, [version] + _convert_bits(program, 8, 5, pad=True), const)


# -- scripts ----------------------------------------------------------------


def p2pkh_script(pubkey_hash):
    """``OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG``."""
    return b"\x76\xa9\x14" + pubkey_hash + b"\x88\xac"


def p2sh_script(script_hash):
    """``OP_HASH160 <20> OP_EQUAL``."""
    return b"\xa9\x14" + script_hash + b"\x87"


def witness_script(version, program):
    """``OP_n <program>``: the output script of a witness program."""
    return bytes((0x50 + version if version else 0, len(program))) + program


def _networks_with(predicate):
    return ", ".join(n.name for n in NETWORKS if predicate(n)) or "no known network"


def address_to_script(address, network):
    """
    The output script paying ``address`` on ``network``.

    Raises ``InvalidAddress`` saying what is wrong: bad checksum, an address
    of another network, an unknown kind, a bad witness program, bech32 used
    where bech32m is required or the reverse.
    """
    if not isinstance(address, str) or not address:
        raise InvalidAddress(f"address must be a non-empty string, got {address!r}")
    lower = address.lower()
    sep = lower.rfind("1")
    hrp = lower[:sep] if sep > 0 else None
    if hrp is not None and any(n.bech32_hrp == hrp for n in NETWORKS):
        hrp, version, program = decode_segwit_address(address)
        if hrp != network.bech32_hrp:
            raise InvalidAddress(
                f"address {address} is for {_networks_with(lambda n: n.bech32_hrp == hrp)}, "
                f"not {network.name}"
            )
        return witness_script(version, program)
    try:
        payload = b58check_decode(address)
    except InvalidAddress as base58_error:
        try:
            other_hrp, _, _ = bech32_decode(address)
        except InvalidAddress:
            raise InvalidAddress(f"{base58_error} in {address!r}") from None
        raise InvalidAddress(f"bech32 address with unknown prefix {other_hrp!r}") from None
    if len(payload) != 21:
        raise InvalidAddress(f"base58 address payload is {len(payload)} bytes, expected 21")
    version, hash160 = payload[0], payload[1:]
    if version == network.pubkey_hash_prefix:
        return p2pkh_script(hash160)
    if version == network.script_hash_prefix:
        return p2sh_script(hash160)
    owners = _networks_with(lambda n: version in (n.pubkey_hash_prefix, n.script_hash_prefix))
    raise InvalidAddress(
        f"address {address} has version byte {version:#04x} ({owners}), not one of {network.name}"
    )


def script_to_address(script, network):
    """
    The address of a standard output script on ``network`` (for logs and
    tests); ``ValueError`` for scripts that have no address form.
    """
    n = len(script)
    if n == 25 and script[:3] == b"\x76\xa9\x14" and script[23:] == b"\x88\xac":
        return b58check_encode(bytes((network.pubkey_hash_prefix,)) + script[3:23])
    if n == 23 and script[:2] == b"\xa9\x14" and script[22] == 0x87:
        return b58check_encode(bytes((network.script_hash_prefix,)) + script[2:22])
    if 4 <= n <= 42 and (script[0] == 0 or 0x51 <= script[0] <= 0x60) and script[1] == n - 2:
        version = script[0] - 0x50 if script[0] else 0
        try:
            return encode_segwit_address(network.bech32_hrp, version, script[2:])
        except ValueError:
            pass
    raise ValueError(f"script {script.hex()} has no address form")
