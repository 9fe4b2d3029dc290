"""Health endpoints answer 200 without any authentication once the server is ready."""

import urllib.request

import pytest

from conftest import make_s3_client


@pytest.mark.parametrize("path", ["/health/live", "/health/ready", "/healthz"])
def test_health_endpoint_without_auth(server, path):
    req = urllib.request.Request(server.endpoint + path, method="GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_health_is_not_an_s3_bucket_named_health(server):
    # The S3 namespace still works next to the health routes.
    s3 = make_s3_client(server.endpoint, server.access_key, server.secret_key)
    assert "Buckets" in s3.list_buckets()


def test_drive_expansion_argument(server_factory):
    """DRIVES accept MinIO-style `{1...4}` expansion."""
    srv = server_factory(drive_args=[])
    srv.drive_args = [str(srv.workdir / "disk{1...4}")]
    srv.start()
    s3 = srv.client()
    s3.create_bucket(Bucket="expanded")
    s3.put_object(Bucket="expanded", Key="k", Body=b"v")
    assert s3.get_object(Bucket="expanded", Key="k")["Body"].read() == b"v"
    for i in range(1, 5):
        assert (srv.workdir / f"disk{i}").is_dir()
        assert any((srv.workdir / f"disk{i}").iterdir()), f"disk{i} was not formatted"
