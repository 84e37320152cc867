# -*- test-case-name: tests.test_sendnow -*-
"""
Bytes onto a TCP connection now, not on the reactor's next turn.

``transport.write`` only queues: the reactor registers the socket for
writing, ``send``s on its next turn and unregisters it (three system calls
and a turn per write).  Where the moment matters (a job's notify to 10,000
miners, a block candidate on its way to the jobmaster) one ``send`` from
the caller is both faster and earlier: the bytes are in the kernel before
the caller goes on to slower work such as logging or an ``fsync``.

Only while the transport has nothing queued, so order is kept; whatever
the kernel does not take, and any error, goes to ``transport.write`` as
usual, so Twisted still sees errors as its own and its buffer, producer
pause and close logic work as before.  This reads ``dataBuffer`` and
``_tempDataLen`` of Twisted's ``FileDescriptor`` and ``_aborting`` of its
``tcp.Connection``: the seam is tested over real sockets
(``tests/test_sendnow.py``) so a Twisted change that moves them shows.
"""

from twisted.internet import tcp


def direct_socket(transport):
    """
    The socket under ``transport`` when bytes may be sent on it directly
    (a plain TCP or UNIX stream connection), else None (TLS, whose bytes
    must pass through its own layer, or a test's string transport).
    """
    if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
        return transport.socket
    return None


def send_now(transport, sock, data):
    """
    Send ``data`` on ``transport``, straight to ``sock`` (from
    ``direct_socket``; None means always ``transport.write``) while nothing
    is queued ahead of it.
    """
    if (sock is not None and not transport.dataBuffer and not transport._tempDataLen
            and transport.connected and not transport.disconnecting and not transport._aborting):
        try:
            sent = sock.send(data)
        except OSError:
            sent = 0
        if sent == len(data):
            return
        data = data[sent:]
    transport.write(data)
