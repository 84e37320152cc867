# -*- test-case-name: tests.jobmaster.test_service -*-
"""
The jobmaster's admin commands (ref §3.11), served by ``viabtc.cli`` on the
``cli`` address: ban management, a template refresh on ``blocknotify``
(bitcoind's ``-blocknotify`` hook), the coinbase message, and a manual
alert.  Each handler takes the argument words and returns the reply text.
"""

from twisted.logger import Logger

from viabtc.rpc.bans import BadBanUpdate, BanUpdate, parse_ips

_log = Logger(namespace="viabtc.jobmaster.commands")


def jobmaster_commands(master):
    """
    Name → handler for ``master`` (the ``JobmasterService``), which provides
    ``apply_ban(update, source)``, ``ban_lines()``, ``blocknotify()``,
    ``aux_blocknotify(name)``, ``aux_status()``,
    ``coinbase_message`` and ``set_coinbase_message(text)``.
    """

    def addban(args):
        """<limit seconds> ip... : ban IPs at every gateway (limit 0 = forever)"""
        if len(args) < 2:
            return "usage: addban <limit seconds> ip...\n"
        try:
            limit = int(args[0])
            if not 0 <= limit < 2**32:
                raise ValueError
        except ValueError:
            return f"error: limit {args[0]!r} is not a number of seconds\n"
        try:
            ips = parse_ips(args[1:])
        except BadBanUpdate as e:
            return f"error: {e}\n"
        master.apply_ban(BanUpdate("add", ips, limit), "cli")
        return f"banned {len(ips)} ip(s)\n"

    def delban(args):
        """ip... : lift bans"""
        if not args:
            return "usage: delban ip...\n"
        try:
            ips = parse_ips(args)
        except BadBanUpdate as e:
            return f"error: {e}\n"
        master.apply_ban(BanUpdate("del", ips), "cli")
        return f"unbanned {len(ips)} ip(s)\n"

    def listban(args):
        """list banned IPs with the time left"""
        lines = master.ban_lines()
        return "\n".join(lines) + "\n" if lines else "no banned ip\n"

    def blocknotify(args):
        """fetch a new template now (for bitcoind -blocknotify)"""
        master.blocknotify()
        return "ok\n"

    def aux_blocknotify(args):
        """<name> : poll an aux chain now (for its daemon's -blocknotify)"""
        if len(args) != 1:
            return "usage: aux_blocknotify <name>\n"
        if not master.aux_blocknotify(args[0]):
            return f"error: no aux chain named {args[0]!r}\n"
        return "ok\n"

    def auxstatus(args):
        """show each aux chain and the aux blocks the current job commits to"""
        return "\n".join(master.aux_status()) + "\n"

    def setcoinbase(args):
        """"<message>" : set the coinbase message of the next jobs"""
        if len(args) != 1:
            return 'usage: setcoinbase "<message>"\n'
        try:
            master.set_coinbase_message(args[0])
        except ValueError as e:
            return f"error: {e}\n"
        return "ok\n"

    def getcoinbase(args):
        """show the coinbase message"""
        return master.coinbase_message + "\n"

    def clearcoinbase(args):
        """clear the coinbase message"""
        master.set_coinbase_message("")
        return "ok\n"

    def alert(args):
        """"<message>" : send an alert (critical log) with the message"""
        if not args:
            return 'usage: alert "<message>"\n'
        _log.critical("cli alert: {text}", text=" ".join(args), role="jobmaster")
        return "ok\n"

    return {
        "addban": addban,
        "delban": delban,
        "listban": listban,
        "blocknotify": blocknotify,
        "aux_blocknotify": aux_blocknotify,
        "auxstatus": auxstatus,
        "setcoinbase": setcoinbase,
        "getcoinbase": getcoinbase,
        "clearcoinbase": clearcoinbase,
        "alert": alert,
    }
