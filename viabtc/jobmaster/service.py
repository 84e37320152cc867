# -*- test-case-name: tests.jobmaster.test_service -*-
"""
The jobmaster role assembled: node templates in, jobs out to gateways, found
blocks checked and delivered, height hints turned into empty-block work, bans
kept and pushed, and the admin CLI (ref §3).

The domain logic lives in the modules this one wires: ``work`` (modes and
jobs), ``jobs`` (building), ``candidate`` (checking found blocks),
``courier`` (delivering them), ``chain`` (facts for empty-block bits),
``gateways`` (the gateway links), ``bans`` and ``commands``.  What is here
is lifecycle and plumbing: the node's chain is checked (or, without a
``network`` key, learnt, and the payout addresses checked against it) before
any job is made; a config that disagrees with the node stops the role with
one ``config error`` line; a 1 s tick drives refreshes, ban expiry and the no-job watchdog, and a
graceful stop stops accepting, lets in-flight block submissions finish
(bounded), cancels every pending call (the tick, the empty mode's timeout,
the chain calls still waiting on the node: a node may take their whole
timeout, or a header walk many calls) and closes the gateway links.
"""

import attrs
from twisted.application.service import MultiService
from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from viabtc.bitcoin.auxpow import COMMITMENT_SIZE
from viabtc.bitcoin.hashing import hash_to_display_hex
from viabtc.cli import cli_service
from viabtc.config import ConfigError
from viabtc.jobmaster.auxchains import (
    AUX_CALL_TIMEOUT, AuxChain, AuxChains, RskChain, VcashChain, VcashHTTP,
)
from viabtc.jobmaster.bans import BanList
from viabtc.jobmaster.candidate import BadCandidate, check_candidate
from viabtc.jobmaster.chain import ChainMismatch, ChainWatch, PinnedChainMismatch
from viabtc.jobmaster.commands import jobmaster_commands
from viabtc.jobmaster.courier import BlockCourier
from viabtc.jobmaster.gateways import GatewayHub
from viabtc.jobmaster.jobs import check_coinbase_text
from viabtc.jobmaster.merge import describe
from viabtc.jobmaster.messages import BadMessage, parse_height_hint
from viabtc.jobmaster.work import MAX_JOBS, Work
from viabtc.node.jsonrpc import NodeConfig, NodeGroup
from viabtc.rpc.client import FailoverClient
from viabtc.rpc.codec import Command
from viabtc.rpc.interfaces import IDatagramHandler
from viabtc.rpc.protocol import RPCDatagramProtocol, RPCServerFactory, TrustedHosts
from viabtc.service import DatagramListener, listen_stream, stop_process

#: Without a job for this long, gateways are cut loose to fail over (ref §3.2).
NO_JOB_TIMEOUT = 600.0
#: ... and not more often than this.
NO_JOB_RESHUTDOWN = 60.0
#: Expired bans are removed (and a ``del`` broadcast) this often (ref §3.10).
BAN_EXPIRY_INTERVAL = 60.0
#: Retry delays for the start-up chain check: node unreachable, wrong chain.
CHAIN_RETRY_UNREACHABLE = 5.0
CHAIN_RETRY_MISMATCH = 60.0
#: How long a graceful stop waits for block submissions in flight.
STOP_SUBMIT_TIMEOUT = 30.0


@implementer(IDatagramHandler)
@attrs.define
class HintReceiver:
    """Height hints (cmd 4) arriving by UDP, checked and handed to ``accept``."""

    accept: object
    _log = Logger()

    def packetReceived(self, protocol, packet, address):
        peer = f"{address[0]}:{address[1]}"
        if packet.command != Command.HEIGHT_UPDATE:
            self._log.warn("datagram with command {command} from {peer} dropped",
                           command=packet.command, peer=peer, role="jobmaster")
            return
        try:
            hint = parse_height_hint(packet.body)
        except BadMessage as e:
            self._log.warn("malformed height hint from {peer} dropped: {error}", peer=peer,
                           error=str(e), role="jobmaster")
            return
        self.accept(hint, peer)


class JobmasterService(MultiService):
    """
    One jobmaster.  ``nodes`` calls the node (``call(method, *params)`` →
    Deferred), ``templates`` is the ``TemplateSource`` service and
    ``submitter`` the ``BlockSubmitter``; tests build them on a real node.
    ``reactor`` provides time and networking.
    """

    _log = Logger()

    def __init__(self, config, reactor, nodes, templates, submitter):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.nodes = nodes
        self.templates = templates
        self.bans = BanList()
        self.chain = ChainWatch(nodes.call, config.network)
        self.chain_ok = False
        #: called with the one line when the config disagrees with the node;
        #: the default stops the process (tests replace it)
        self.config_failed = self._stop_on_config_error
        self.aux = self._aux_chains(config.merged, reactor)
        self._aux_call = None
        #: recent jobs with aux work, by id: a clean job retires a job for
        #: the main chain, not for the aux chains (a share on it is still
        #: valid aux work), so aux reports look their job up here.  Kept
        #: without the template's transactions (only their count matters to
        #: an aux proof), so a hundred jobs cost kilobytes, not a hundred blocks.
        self._aux_jobs = {}
        self.work = Work(config.settings, reactor, self._publish, self._request_template,
                         config.job_rebroadcast_timeout, config.spv_mining_timeout,
                         merge=self.aux.work if self.aux is not None else None)
        self.hub = GatewayHub(self._current_job, self._ban_snapshot, self.found_block,
                              self.apply_ban)
        self.factory = RPCServerFactory(
            self.hub, max_size=config.svr.max_pkg_size, secret=self._secret(),
            trust=TrustedHosts(config.gateway_trust) if config.gateway_trust is not None else None,
            reactor=reactor, role="jobmaster",
        )
        self.hub.factory = self.factory
        self.blockmasters = [
            FailoverClient([address.client_endpoint(reactor)], max_size=config.svr.max_pkg_size,
                           secret=self._secret(), heartbeat_timeout=config.blockmaster_timeout,
                           reactor=reactor, role="jobmaster")
            for address in config.blockmasters
        ]
        self.courier = BlockCourier(submitter, nodes, self.blockmasters, config.found_blocks_dir,
                                    reactor)
        self._pending_template = None
        self._facts_for = None
        self._started_at = None
        self._last_shutdown = None
        self._last_ban_expiry = None
        self._chain_call = None
        self._chain_requests = set()
        self._tick = LoopingCall(self.tick)
        self._tick.clock = reactor
        self.templates.setServiceParent(self)
        templates.add_observer(self.template_arrived)
        for address in config.svr.stream_binds:
            listen_stream(self, address, self.factory, reactor)
        hints = RPCDatagramProtocol(
            HintReceiver(self.hint_arrived), max_size=config.svr.max_pkg_size,
            secret=self._secret(),
            trust=TrustedHosts(config.hint_trust) if config.hint_trust is not None else None,
            reactor=reactor, role="jobmaster",
        )
        self.datagram_services = [
            DatagramListener(address, hints, reactor, config.svr.max_pkg_size)
            for address in config.svr.datagram_binds
        ]
        for service in self.datagram_services:
            service.setServiceParent(self)
        for client in self.blockmasters:
            client.setServiceParent(self)
        if config.cli is not None:
            cli_service(config.cli, jobmaster_commands(self), reactor).setServiceParent(self)

    def _aux_chains(self, merged, reactor):
        """The ``AuxChains`` of the config's ``aux_coin`` entries, or None."""
        if merged is None:
            return None
        def nodes(entries):
            return NodeGroup.from_configs(
                [NodeConfig.from_entry(entry, timeout=AUX_CALL_TIMEOUT) for entry in entries],
                reactor)

        chains = [AuxChain(coin, nodes(coin.nodes), reactor, merged.job_timeout, self._aux_changed)
                  for coin in merged.coins]
        rsk = vcash = None
        if merged.rsk is not None:
            rsk = RskChain(merged.rsk.name, nodes(merged.rsk.nodes), reactor, merged.job_timeout,
                           merged.rsk_job_interval, self._aux_changed)
        if merged.vcash is not None:
            vcash = VcashChain(merged.vcash.name, VcashHTTP(merged.vcash.nodes[0], reactor),
                               reactor, self._aux_changed)
        return AuxChains(chains, merged.size, merged.nonce, rsk, vcash)

    def _aux_changed(self):
        # Several chains may change in one turn: one new job for all of them.
        if self._aux_call is None or not self._aux_call.active():
            self._aux_call = self.reactor.callLater(0, self._aux_update)

    def _aux_update(self):
        self._aux_call = None
        current = self.work.current
        wanted = self.aux.work()
        have = current.merge if current is not None else None
        if (wanted.hashes() if wanted else ()) != (have.hashes() if have else ()):
            self.work.aux_changed()

    def aux_blocknotify(self, name):
        """CLI ``aux_blocknotify <name>``: poll that aux chain now; False if unknown."""
        chain = self.aux.get(name) if self.aux is not None else None
        if chain is None:
            return False
        chain.notify()
        return True

    def _secret(self):
        return self.config.secret.value if self.config.secret is not None else None

    # -- lifecycle ---------------------------------------------------------

    def startService(self):
        self._started_at = self._last_ban_expiry = self.reactor.seconds()
        super().startService()
        self._check_chain()
        self._tick.start(1.0, now=False)

    def stopService(self):
        if self._tick.running:
            self._tick.stop()
        if self._aux_call is not None and self._aux_call.active():
            self._aux_call.cancel()
        if self.aux is not None:
            self.aux.close()
        if self._chain_call is not None and self._chain_call.active():
            self._chain_call.cancel()
        self.work.stop()
        stopped = defer.gatherResults([
            defer.maybeDeferred(super().stopService),
            self.courier.stop(STOP_SUBMIT_TIMEOUT),
        ], consumeErrors=True)
        # Not running any more, so their errbacks neither warn nor retry.
        for request in list(self._chain_requests):
            request.cancel()

        def close_links(result):
            self.hub.close_all()
            return self.nodes.close()

        return stopped.addBoth(close_links)

    def _chain_request(self, d):
        """Track ``d``, a call of ``self.chain``, until it has an answer."""
        self._chain_requests.add(d)

        def answered(result):
            self._chain_requests.discard(d)
            return result

        return d.addBoth(answered)

    def _check_chain(self):
        self._chain_call = None
        d = self._chain_request(self.chain.check_network())
        d.addCallbacks(self._chain_checked, self._chain_failed)

    def _chain_checked(self, network):
        settings = self.work.settings
        if settings.payout is None:
            try:
                payout = self.config.payout_addresses.resolve(network)
            except ConfigError as e:
                self.config_failed(f"config error: {e} (the node's chain)")
                return
            self.work.set_settings(attrs.evolve(settings, network=network, payout=payout))
        self.chain_ok = True
        self._log.info("node is on {network}; building jobs", network=network.name, role="jobmaster")
        if self._pending_template is not None:
            template, new_tip = self._pending_template
            self._pending_template = None
            self.template_arrived(template, new_tip)

    def _chain_failed(self, failure):
        if not self.running or failure.check(defer.CancelledError):
            return
        if failure.check(PinnedChainMismatch):
            self.config_failed(f"config error: network: {failure.getErrorMessage()}")
            return
        if failure.check(ChainMismatch):
            self._log.critical("refusing to build jobs: {error}", error=failure.getErrorMessage(),
                               role="jobmaster")
            delay = CHAIN_RETRY_MISMATCH
        else:
            self._log.warn("cannot ask the node for its chain: {error}",
                           error=failure.getErrorMessage(), role="jobmaster")
            delay = CHAIN_RETRY_UNREACHABLE
        self._chain_call = self.reactor.callLater(delay, self._check_chain)

    def _stop_on_config_error(self, line):
        """Log ``line`` (critical, so it also goes to alertcenter) and stop the process (status 1)."""
        self._log.critical("{line}", line=line, role="jobmaster")
        if self.reactor.running:
            stop_process(self.reactor)

    def tick(self):
        """Once a second: refreshes, ban expiry, the no-job watchdog."""
        now = self.reactor.seconds()
        self.work.tick()
        if self.aux is not None:
            self.aux.poll()
        if now - self._last_ban_expiry >= BAN_EXPIRY_INTERVAL:
            self._last_ban_expiry = now
            self.hub.broadcast_ban(self.bans.expire(now))
        last_job = self.work.last_job_time or self._started_at
        if now - last_job >= NO_JOB_TIMEOUT and (
                self._last_shutdown is None or now - self._last_shutdown >= NO_JOB_RESHUTDOWN):
            self._last_shutdown = now
            self.work.forget_current()
            closed = self.hub.close_all()
            self._log.critical("no job for {seconds:.0f} s: closed {count} gateway link(s) so "
                               "they fail over", seconds=now - last_job, count=closed,
                               role="jobmaster")

    # -- templates and jobs -----------------------------------------------

    def template_arrived(self, template, new_tip):
        if not self.chain_ok:
            self._pending_template = (template, new_tip)
            return
        self.work.template_arrived(template, new_tip)
        if self.work.template is template and self._facts_for != template.previous_hash:
            self._facts_for = template.previous_hash
            d = self._chain_request(self.chain.facts_for(template))
            d.addCallbacks(self.work.facts_arrived, self._facts_failed, errbackArgs=(template,))

    def _facts_failed(self, failure, template):
        if self._facts_for == template.previous_hash:
            self._facts_for = None
        if failure.check(defer.CancelledError):
            return
        self._log.warn("chain facts for height {height} not fetched: {error}",
                       height=template.height, error=failure.getErrorMessage(), role="jobmaster")

    def _request_template(self, clean):
        # TemplateSource logs its own failures; the next tick asks again.
        self.templates.refresh(clean).addErrback(lambda _: None)

    def _publish(self, context):
        job = context.job
        if context.merge is not None:
            self._aux_jobs.pop(job.job_id, None)
            self._aux_jobs[job.job_id] = attrs.evolve(
                context, transactions=(b"",) * len(context.transactions),
                transactions_bytes=b"", transactions_hex=b"")
            if len(self._aux_jobs) > MAX_JOBS:
                del self._aux_jobs[next(iter(self._aux_jobs))]
        count = self.hub.broadcast_job(job)
        self._log.info("job {job_id} height {height}{kind}{clean} sent to {count} gateway(s)",
                       job_id=job.job_id, height=job.height,
                       kind=" (empty block)" if context.empty else "",
                       clean=" clean" if job.clean_jobs else "", count=count, role="jobmaster")

    def _current_job(self):
        current = self.work.current
        return current.job if current is not None else None

    def hint_arrived(self, hint, peer):
        reason = self.work.hint_arrived(hint, peer)
        if reason is None:
            self._log.info("height hint {height} from {peer}: mining empty blocks on it",
                           height=hint.height, peer=peer, role="jobmaster")
        else:
            self._log.debug("height hint {height} from {peer} ignored: {reason}",
                            height=hint.height, peer=peer, reason=reason, role="jobmaster")

    def blocknotify(self):
        self.templates.blocknotify()

    # -- found blocks ------------------------------------------------------

    def found_block(self, found, peer):
        """A gateway's found block: check it and deliver it (a Deferred, or None)."""
        if found.kind != "main":
            return self.found_aux_block(found, peer)
        context = self.work.lookup(found.job_id)
        try:
            if context is None:
                raise BadCandidate("no such job")
            candidate = check_candidate(found, context)
        except (BadCandidate, ValueError) as e:
            candidate = self._assemble_elsewhere(found)
            if candidate is None:
                if context is None:
                    self._log.critical("found block {hash} from {peer} names unknown job {job_id}; "
                                       "it cannot be assembled", hash=hash_to_display_hex(found.block_hash),
                                       peer=peer, job_id=found.job_id, role="jobmaster")
                else:
                    self._log.critical("found block from {peer} for job {job_id} is not a valid block: "
                                       "{error}", peer=peer, job_id=found.job_id, error=str(e),
                                       role="jobmaster")
                return None
            self._log.warn("found block {hash} from {peer} names job {job_id}, not one of ours by that "
                           "id ({error}); it assembles with our job {ours}", hash=candidate.display_hash,
                           peer=peer, job_id=found.job_id, error=str(e), ours=candidate.job_id,
                           role="jobmaster")
        # Deliver first (the requests are issued before it returns), log after.
        delivered = self.courier.deliver(candidate)
        self._log.info("block {hash} found at height {height} (job {job_id}, gateway {peer})",
                       hash=candidate.display_hash, height=candidate.height,
                       job_id=found.job_id, peer=peer, role="jobmaster")
        return delivered

    def _assemble_elsewhere(self, found):
        """
        The ``Candidate`` of ``found`` made with any of our jobs, or None.
        A gateway that failed over from another jobmaster resends the
        candidates its lost link may have swallowed (``viabtc.gateway.blocks``)
        with that jobmaster's job ids; ours built from the same template hold
        the same coinbase halves and branch, and the full check decides.
        """
        for context in self.work.contexts():
            try:
                return check_candidate(found, context)
            except (BadCandidate, ValueError):
                continue
        return None

    def found_aux_block(self, found, peer):
        """
        A gateway's share meeting aux chain ``found.name``'s target: its
        AuxPoW built, checked as the aux chain will check it, and submitted
        (a Deferred, or None when it cannot be).
        """
        context = self._aux_jobs.get(found.job_id)
        chain = self.aux.get(found.name) if self.aux is not None else None
        target = chain.target_in(context.merge) if context is not None and chain else None
        if target is None:
            self._log.critical("aux block {name} from {peer} names job {job_id}, which mines no "
                               "such aux chain; dropped", name=found.name, peer=peer,
                               job_id=found.job_id, role="jobmaster")
            return None
        try:
            check_candidate(found, context, target=target)
            block_hash, shown, params = chain.prepare(found, context)
        except (BadCandidate, ValueError) as e:
            self._log.critical("aux block {name} from {peer} for job {job_id} is not valid: "
                               "{error}", name=found.name, peer=peer, job_id=found.job_id,
                               error=str(e), role="jobmaster")
            return None
        if not chain.first_submission(block_hash):
            self._log.info("aux block {name} {hash} already submitted; another share for it "
                           "ignored", name=found.name, hash=shown, role="jobmaster")
            return None
        d = chain.submit(params)
        self._log.info("aux block {name} {hash} found (parent {parent}, job {job_id}, gateway "
                       "{peer}); submitting", name=found.name, hash=shown,
                       parent=hash_to_display_hex(found.block_hash), job_id=found.job_id,
                       peer=peer, role="jobmaster")

        def submitted(accepted):
            if accepted:
                self._log.info("aux chain {name} accepted block {hash}", name=found.name,
                               hash=shown, role="jobmaster")
            else:
                self._log.critical("aux chain {name} rejected block {hash}", name=found.name,
                                   hash=shown, role="jobmaster")
            chain.notify()

        def failed(failure):
            # Not delivered: another share for the block may try again.
            chain.submitted.discard(block_hash)
            self._log.critical("aux block {name} {hash} not submitted: {error}", name=found.name,
                               hash=shown, error=failure.getErrorMessage(), role="jobmaster")

        return d.addCallbacks(submitted, failed)

    def aux_status(self):
        """Lines describing each aux chain and the current job's aux work (CLI)."""
        if self.aux is None:
            return ["no aux chains configured"]
        lines = []
        for chain in self.aux:
            state = "failing" if chain.failing else "ok"
            work = chain.work
            shown = "-" if work is None else (
                f"{getattr(work, 'display_hash', None) or work.block_hash.hex()} "
                f"height {work.height}")
            lines.append(f"{chain.name}: {state}, work {shown}")
        current = self.work.current
        lines.append(f"current job: {describe(current.merge if current else None)}")
        return lines

    # -- bans and coinbase text --------------------------------------------

    def apply_ban(self, update, source):
        self.bans.apply(update, self.reactor.seconds())
        self.hub.broadcast_ban(update)
        self._log.info("ban {op} {ips} (limit {limit}) from {source}", op=update.op,
                       ips=" ".join(update.ips), limit=update.limit, source=source,
                       role="jobmaster")

    def _ban_snapshot(self):
        return self.bans.snapshot(self.reactor.seconds())

    def ban_lines(self):
        return self.bans.describe(self.reactor.seconds())

    @property
    def coinbase_message(self):
        return self.work.settings.coinbase_message

    def set_coinbase_message(self, text):
        """Change the coinbase message of the next jobs; ``ValueError`` if it cannot fit."""
        check_coinbase_text(self.work.settings.pool_name, text,
                            COMMITMENT_SIZE if self.aux is not None else 0)
        self.work.set_settings(attrs.evolve(self.work.settings, coinbase_message=text))
