from bingobox.wallet import signing


def test_signature_covers_every_part():
    base = ("s3cr3t-s3cr3t-s3cr3t", "POST", "/v1/charges", "1800000000", "n1", b'{"a":1}')
    sig = signing.signature(*base)
    assert len(sig) == 64 and sig == sig.lower()
    assert signing.check_signature(*base, sig)
    assert signing.check_signature(*base, sig.upper())
    for i, other in enumerate(["x" * 20, "GET", "/v1/charges?x=1", "1800000001", "n2", b'{"a":2}']):
        changed = list(base)
        changed[i] = other
        assert not signing.check_signature(*changed, sig)


def test_sign_headers_fresh_nonce_each_time():
    a = signing.sign_headers("s1", "k" * 20, "POST", "/p", b"")
    b = signing.sign_headers("s1", "k" * 20, "POST", "/p", b"")
    assert a["X-Nonce"] != b["X-Nonce"] and a["X-Store-Id"] == "s1"
    assert signing.check_signature("k" * 20, "POST", "/p", a["X-Timestamp"], a["X-Nonce"], b"", a["X-Signature"])
