# -*- test-case-name: tests.jobmaster.test_work -*-
"""
What the pool mines on: the current job, the jobs gateways may still report
blocks for, and the choice between full-template jobs and empty-block jobs.

Two modes (ref §3.2, §3.9), one transition table:

- **normal**: every template from the node becomes a job (clean when the
  previous block changed); a due refresh asks the node for a new template.
- **empty**: a height hint said the network has a block our node does not
  have yet; the pool mines empty blocks on top of the hinted block until the
  node catches up (then a full job, clean only if the node's tip is not the
  hinted block: §12.12) or until ``spv_timeout`` (a critical log, and a
  clean template is requested).

Templates that arrive out of order never replace a newer one (§12.13), and
hints are only accepted for exactly the block after the node's tip, higher
than any hint before (ref §3.9).  No I/O here: the service feeds templates,
hints and chain facts in, and ``publish`` and ``request_template`` go out.
"""

from automat import MethodicalMachine
from twisted.logger import Logger

from viabtc.bitcoin.retarget import min_block_time
from viabtc.jobmaster.jobs import build_empty_job, build_job, next_job_id
from viabtc.jobmaster.nextbits import empty_block_bits

#: Jobs kept for found-block lookups within one height: more than a
#: gateway keeps (64), so any job a gateway still accepts shares for is here.
MAX_JOBS = 100

#: A non-clean template arriving sooner than this after the last job is not
#: worth a new job (the seed's 10 s between template requests).
MIN_JOB_INTERVAL = 10.0


class Work:
    """
    ``publish(context)`` is called with the ``JobContext`` of every new job
    once it is current; ``request_template(clean)`` asks the node for a new
    template.  ``clock`` is an ``IReactorTime``; ``tick()`` is called about
    once a second.
    """

    _machine = MethodicalMachine()
    _log = Logger()

    def __init__(self, settings, clock, publish, request_template, rebroadcast_timeout,
                 spv_timeout, merge=None):
        self.settings = settings
        #: ``merge()`` gives the aux blocks the next job commits to (``None``: none)
        self._merge = merge
        self._clock = clock
        self._publish = publish
        self._request_template = request_template
        self._rebroadcast_timeout = rebroadcast_timeout
        self._min_job_interval = min(MIN_JOB_INTERVAL, rebroadcast_timeout)
        self._spv_timeout = spv_timeout
        self._contexts = {}
        self._last_id = 0
        self._spv_call = None
        self._refresh_asked = None
        self._hint_facts = None
        self._hint_source = None
        self._empty_since = None
        #: the ``JobContext`` of the job gateways mine on (None: none yet)
        self.current = None
        #: the newest template from the node, and the chain facts below it
        self.template = None
        self.facts = None
        #: the hint being mined on in empty mode
        self.hint = None
        self.last_hint_height = 0
        #: when the last job was made (clock seconds), None before the first
        self.last_job_time = None
        #: "normal" or "empty", for logs and the CLI
        self.mode = "normal"

    # -- queries ---------------------------------------------------------

    def lookup(self, job_id):
        """The ``JobContext`` of a job gateways may still report blocks for."""
        return self._contexts.get(job_id)

    def contexts(self):
        """The ``JobContext``s gateways may still report blocks for, newest first."""
        return list(reversed(self._contexts.values()))

    def __len__(self):
        return len(self._contexts)

    def job_age(self):
        """Seconds since the last job (infinite before the first)."""
        if self.last_job_time is None:
            return float("inf")
        return self._clock.seconds() - self.last_job_time

    # -- feeding ---------------------------------------------------------

    def template_arrived(self, template, new_tip):
        """A template from the node (``new_tip``: its previous block is new)."""
        newest = self.template
        if newest is not None and not new_tip and (
            template.height < newest.height
            or (template.height == newest.height and template.previous_hash != newest.previous_hash)
        ):
            self._log.warn("template for height {height} arrived out of order; ignored",
                           height=template.height, role="jobmaster")
            return
        self.template = template
        if self.facts is not None and self.facts.tip_hash != template.previous_hash:
            self.facts = None
        if self.hint is not None and template.height <= self.hint.height:
            self._node_behind()
            return
        current = self.current
        clean = current is None or current.prevhash != template.previous_hash
        if (not clean and not new_tip and not current.empty
                and self.job_age() < self._min_job_interval):
            return
        context = self._make(build_job, template, clean=clean,
                             time_floor=self._time_floor(template))
        if context is not None:
            self._full_job(context)

    def _time_floor(self, template):
        """
        BIP94's timewarp floor for ``template``'s block when the parent's time
        is known from chain facts (0 otherwise: the template's ``mintime``,
        which Bitcoin Core already raises to it, stands alone).
        """
        facts = self.facts
        if facts is None or facts.tip_hash != template.previous_hash:
            return 0
        return min_block_time(self.settings.network, template.height, facts.tip_time)

    def facts_arrived(self, facts):
        """Chain facts for the tip below ``self.template`` (prefetched for hints)."""
        if self.template is not None and facts.tip_hash == self.template.previous_hash:
            self.facts = facts

    def hint_arrived(self, hint, source=None):
        """
        A height hint (already authenticated by the RPC layer) from
        ``source`` (for the logs).  Returns a short reason when it is not
        acted on, else None.
        """
        template = self.template
        if self._spv_timeout <= 0:
            return "empty-block mining is disabled (spv_mining_timeout 0)"
        if self.current is None or template is None:
            return "no job yet"
        if hint.height != template.height:
            return f"height {hint.height} is not the node's next block {template.height}"
        if hint.height <= self.last_hint_height:
            return f"not higher than the last hint {self.last_hint_height}"
        if self.facts is None:
            return "chain facts for the current tip are not fetched yet"
        context = self._empty_context(hint, self.facts, clean=True)
        if context is None:
            return "no empty-block job could be built"
        self.last_hint_height = hint.height
        self._hint_facts = self.facts
        self._hint_source = source
        self._empty_job(context, hint)
        return None

    def tick(self):
        """Ask for fresh work when the last job is ``rebroadcast_timeout`` old."""
        if self.last_job_time is None or self.job_age() < self._rebroadcast_timeout:
            return
        now = self._clock.seconds()
        if self._refresh_asked is not None and now - self._refresh_asked < self._min_job_interval:
            return
        self._refresh_asked = now
        self._refresh_due()

    def aux_changed(self):
        """
        The aux blocks to mine changed: a new job now, from the template or
        hint the current job was made from (ref §3.7 ``on_aux_update``).
        """
        current, template = self.current, self.template
        if current is None:
            return
        if self.mode == "empty":
            self._refresh_due()
        elif template is not None and not current.empty and current.prevhash == template.previous_hash:
            context = self._make(build_job, template, clean=False)
            if context is not None:
                self._full_job(context)

    def forget_current(self):
        """
        Stop offering the current job to new gateways (no job could be made
        for too long, ref §3.2 step 4).  Known jobs stay for found blocks.
        """
        self.current = None

    def set_settings(self, settings):
        """New settings (``setcoinbase``) for the jobs made from now on."""
        self.settings = settings

    def stop(self):
        """The service is stopping: cancel the empty mode's timeout (the mode stays as it is)."""
        self._cancel_spv_timeout()

    def _cancel_spv_timeout(self):
        if self._spv_call is not None and self._spv_call.active():
            self._spv_call.cancel()
        self._spv_call = None

    # -- the machine -------------------------------------------------------

    @_machine.state(initial=True)
    def _normal(self):
        "Jobs come from the node's templates."

    @_machine.state()
    def _empty(self):
        "Empty-block jobs on top of a hinted block, until the node catches up."

    @_machine.input()
    def _full_job(self, context):
        "A job from a template the node made on its current tip."

    @_machine.input()
    def _empty_job(self, context, hint):
        "An empty-block job for an accepted hint."

    @_machine.input()
    def _node_behind(self):
        "A template from a node that has not caught up with the hint."

    @_machine.input()
    def _spv_expired(self):
        "Empty-block mode lasted spv_mining_timeout."

    @_machine.input()
    def _refresh_due(self):
        "No new job for job_rebroadcast_timeout."

    @_machine.output()
    def _install(self, context):
        self._set_current(context)

    @_machine.output()
    def _enter_empty(self, hint):
        self.mode = "empty"
        self.hint = hint
        self._spv_call = self._clock.callLater(self._spv_timeout, self._spv_expired)
        self._empty_since = self._clock.seconds()
        self._log.info("empty-block mode: block {height} announced by {source}, node behind",
                       height=hint.height, source=self._hint_source, role="jobmaster")

    @_machine.output()
    def _follow_hint(self, hint):
        self.hint = hint
        self._log.info("empty-block mode: now on block {height} announced by {source}",
                       height=hint.height, source=self._hint_source, role="jobmaster")

    @_machine.output()
    def _leave_empty(self):
        self._log.info("full templates again after {duration:.3f} s of empty blocks on block "
                       "{height} (announced by {source})",
                       duration=self._clock.seconds() - self._empty_since, height=self.hint.height,
                       source=self._hint_source, role="jobmaster")
        self.mode = "normal"
        self.hint = None
        self._hint_facts = None
        self._cancel_spv_timeout()

    @_machine.output()
    def _report_timeout(self):
        self._log.critical("spv mining timeout: node did not reach the hinted block {height} "
                           "within {timeout} s", height=self.hint.height,
                           timeout=self._spv_timeout, role="jobmaster")

    @_machine.output()
    def _ask_clean_template(self):
        self._request_template(True)

    @_machine.output()
    def _ask_template(self):
        self._request_template(False)

    @_machine.output()
    def _refresh_empty(self):
        context = self._empty_context(self.hint, self._hint_facts, clean=False)
        if context is not None:
            self._set_current(context)

    _normal.upon(_full_job, enter=_normal, outputs=[_install])
    _normal.upon(_empty_job, enter=_empty, outputs=[_enter_empty, _install])
    _normal.upon(_refresh_due, enter=_normal, outputs=[_ask_template])
    _empty.upon(_full_job, enter=_normal, outputs=[_leave_empty, _install])
    _empty.upon(_empty_job, enter=_empty, outputs=[_follow_hint, _install])
    _empty.upon(_node_behind, enter=_empty, outputs=[])
    _empty.upon(_spv_expired, enter=_normal,
                outputs=[_report_timeout, _leave_empty, _ask_clean_template])
    _empty.upon(_refresh_due, enter=_empty, outputs=[_refresh_empty])

    # -- building ----------------------------------------------------------

    def _set_current(self, context):
        if context.job.clean_jobs:
            self._contexts.clear()
        elif len(self._contexts) >= MAX_JOBS:
            del self._contexts[next(iter(self._contexts))]
        self._contexts[context.job_id] = context
        self.current = context
        self.last_job_time = self._clock.seconds()
        self._refresh_asked = None
        self._publish(context)

    def _make(self, build, *args, clean, **kwargs):
        job_id = next_job_id(self._last_id)
        extra = {"merge": self._merge()} if self._merge is not None else {}
        try:
            _job, context = build(*args, settings=self.settings, job_id=job_id, clean=clean,
                                  **kwargs, **extra)
        except ValueError as e:
            self._log.critical("cannot build a job: {error}", error=str(e), role="jobmaster")
            return None
        self._last_id = job_id
        if context.coinbaseaux_dropped:
            self._log.warn("template coinbaseaux left out: no room beside the coinbase tag",
                           role="jobmaster")
        return context

    def _empty_context(self, hint, facts, clean):
        base = self.current
        if base is None:
            return None
        curtime = max(int(self._clock.seconds()), hint.curtime + 1)
        try:
            nbits = empty_block_bits(facts, hint, curtime)
        except ValueError as e:
            self._log.warn("no empty-block job for hint {height}: {error}", height=hint.height,
                           error=str(e), role="jobmaster")
            return None
        floor = min_block_time(self.settings.network, hint.height + 1, hint.curtime)
        return self._make(
            lambda **kw: build_empty_job(base, hint.height + 1, hint.prevhash, nbits, curtime,
                                         time_floor=floor, **kw),
            clean=clean,
        )
