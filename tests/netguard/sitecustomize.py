"""Loaded at interpreter start when this folder is on PYTHONPATH (the tests put it there for
every notebook kernel). With LABKIT_NETGUARD=1, any connection to a non-local address raises,
so a notebook that reaches for the network fails its test instead of passing by luck."""
import os

if os.environ.get("LABKIT_NETGUARD") == "1":
    import socket

    _LOCAL = ("127.", "::1", "localhost", "0.0.0.0")
    _connect = socket.socket.connect
    _connect_ex = socket.socket.connect_ex
    _getaddrinfo = socket.getaddrinfo

    def _check(address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, bytes):
            host = host.decode()
        if isinstance(host, str) and not host.startswith(_LOCAL) and "/" not in host:
            raise ConnectionRefusedError(f"network access is blocked in tests (tried {address!r})")

    def connect(self, address):
        if self.family != getattr(socket, "AF_UNIX", None):
            _check(address)
        return _connect(self, address)

    def connect_ex(self, address):
        if self.family != getattr(socket, "AF_UNIX", None):
            _check(address)
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None:
            _check((host, 0))
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect
    socket.socket.connect_ex = connect_ex
    socket.getaddrinfo = getaddrinfo
