"""The devkit's free ports lie outside the kernel's ephemeral range, so no client socket can take one first."""

import socket

from bingobox_devkit.ports import _ephemeral_range, bind_listener, free_port


def test_free_ports_are_outside_the_ephemeral_range_bindable_and_never_given_twice():
    lo, hi = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(not lo <= p <= hi for p in ports)
    for p in ports[:20]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", p))


def test_ports_promised_to_a_server_and_a_simulator_s_own_listeners_come_from_apart():
    """A port the harness promises to a server not yet listening (the store's screen) is never one a simulator
    starting meanwhile picks for its own listeners: free ports from the upper half below the range, theirs from the
    lower."""
    promised = [free_port() for _ in range(100)]
    listeners = [bind_listener(0) for _ in range(100)]
    try:
        assert max(s.getsockname()[1] for s in listeners) < min(promised)
    finally:
        for s in listeners:
            s.close()


def test_a_listener_on_port_zero_gets_a_port_outside_the_range_and_can_be_bound_again_after_closing():
    lo, hi = _ephemeral_range()
    srv = bind_listener(0)
    port = srv.getsockname()[1]
    srv.listen(1)
    assert not lo <= port <= hi
    srv.close()
    again = bind_listener(port)
    assert again.getsockname()[1] == port
    again.close()


def test_with_no_room_outside_the_ephemeral_range_the_kernel_chooses(monkeypatch):
    import bingobox_devkit.ports as ports

    monkeypatch.setattr(ports, "_ephemeral_range", lambda: (1024, 65535))
    port = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
