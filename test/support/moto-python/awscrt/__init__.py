"""A stand-in for the awscrt package, carrying only what moto uses: checksums.crc64nvme.

moto computes CRC64NVME only when awscrt is importable; without it, it silently computes CRC32 and
reports that as the object's CRC64NVME (moto/s3/utils.py, compute_checksum). awscrt is a compiled
package that cannot be installed on the test machines (no PyPI), so test/support/moto-s3.ts puts
this directory first on moto_server's PYTHONPATH. botocore, in the same process, looks for
awscrt.auth, which is absent here, so it keeps its own pure-Python code paths.
"""
