def test_s3(s3_server, s3_bucket):
    fs = s3_server.filesystem()
    fs.pipe(f"{s3_bucket}/a", b"hello")
    assert fs.cat(f"{s3_bucket}/a") == b"hello"
