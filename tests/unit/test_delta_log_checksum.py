"""The log check's Python read of a commit file (engine.store._delta_log._verified_local_text):
taken only when the Hadoop ``.crc`` sidecar confirms every 512-byte chunk; any doubt (no sidecar,
a changed byte, a short file, not a local path) returns None and Hadoop's own read decides."""

from __future__ import annotations

import zlib

from engine.store._delta_log import _verified_local_text


def _sidecar(data: bytes, chunk: int = 512) -> bytes:
    sums = b"".join(zlib.crc32(data[i:i + chunk]).to_bytes(4, "big") for i in range(0, len(data), chunk))
    return b"crc\x00" + chunk.to_bytes(4, "big") + sums


def test_a_confirmed_file_is_read_and_any_doubt_is_left_to_hadoop(tmp_path):
    data = ("\n".join(f'{{"add":{{"path":"part-{i:04d}.parquet"}}}}' for i in range(40)) + "\n").encode()
    assert len(data) > 1024  # several chunks
    file = tmp_path / "00000000000000000003.json"
    file.write_bytes(data)
    assert _verified_local_text(str(file)) is None  # no sidecar: Hadoop reads it
    (tmp_path / ".00000000000000000003.json.crc").write_bytes(_sidecar(data))
    assert _verified_local_text(str(file)) == data.decode()
    assert _verified_local_text(f"file:{file}") == data.decode()
    file.write_bytes(data[:-7])  # truncated after the checksum was written
    assert _verified_local_text(str(file)) is None
    file.write_bytes(data.replace(b"0007", b"0008"))  # one changed byte, same length
    assert _verified_local_text(str(file)) is None
    assert _verified_local_text("s3://bucket/t/_delta_log/00000000000000000003.json") is None
